"""A service registry that speaks the subset of Consul's HTTP API the platform uses."""
