"""Integrations with the metrics ecosystem: Prometheus remote-write and query backfill, OTLP/HTTP metrics,
and exports (Prometheus exposition of forecasts and recommendations, a KEDA metrics-api endpoint)."""
