"""A configured source: its upstream and budget, discovery, its self-metrics."""
