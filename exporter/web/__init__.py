"""What the exporter serves over HTTP: the app, the status page, the web config, webhooks."""
