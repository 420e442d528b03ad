"""The kernel every room builds on: turn and reply types, the typed router, errors, background workers."""
