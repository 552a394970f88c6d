"""What the order service does: `orders` (commands from the API) and `saga` (the orchestrator)."""
