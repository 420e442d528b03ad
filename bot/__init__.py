"""Gradebot's Teams application: settings, the botbuilder edge, command routing and teacher use-cases."""
