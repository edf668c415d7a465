"""sync-status-exporter: Prometheus metrics for the state of managed data syncs."""

__version__ = "0.1.0"
