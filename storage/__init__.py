"""Gradebot's persistence behind one Store protocol: SQLite embedded by default, PostgreSQL when shared."""
