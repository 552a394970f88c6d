"""What crosses a process boundary: the event envelope, event payloads, and shared API shapes."""
