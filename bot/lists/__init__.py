"""Lists: classes, assignments and ungraded work."""
