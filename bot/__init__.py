"""Gradebot's Teams application: a small kernel, the Teams edge, and one room per feature."""
