"""OpenTelemetry (OTLP/HTTP) trace ingest: GenAI spans become usage events."""
