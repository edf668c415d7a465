"""Grafana dashboards for the exporter, generated with grafana-foundation-sdk."""
