"""Adaptive Card views: pure functions from data to card JSON, and the typed Action.Execute payloads."""
