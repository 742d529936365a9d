"""The HTTP API: FastAPI app, Prometheus metrics (and later the dashboard)."""
