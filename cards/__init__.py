"""Adaptive Card views, one module per feature over blocks.py, and the typed Action.Execute payloads they carry."""
