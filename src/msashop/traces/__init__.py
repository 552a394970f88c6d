"""The embedded trace store: an OTLP/HTTP receiver, a bounded SQLite store, an API and a page."""
