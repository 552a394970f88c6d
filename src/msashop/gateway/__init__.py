"""The API gateway: one entry point that routes /api/* to the owning service and serves the web UI."""
