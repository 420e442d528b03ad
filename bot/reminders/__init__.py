"""Reminders: each teacher's digest of work waiting to be graded, on their own schedule."""
