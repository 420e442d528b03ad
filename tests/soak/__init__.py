"""The soak: 1,000 grade writes from cards under 20% Graph faults while Gradebot is killed and restarted, on SQLite
and PostgreSQL; `python -m tests.soak` runs it (bounded by default, `--long` for the full one)."""
