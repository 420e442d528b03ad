"""The durable queue of Graph writes (its mechanics; what a write means lives in its feature)."""
