"""Metric families, per-sync targets, the renderer and the exporter's self-metrics."""
