"""Prometheus alerting rules for the exporter, generated so thresholds live in one place."""
