"""The shop's services. Each is its own process and database; they share only chassis and contracts."""
