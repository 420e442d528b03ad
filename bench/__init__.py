"""Benchmarks: Gradebot's Graph access measured against a deliberately naive client, in one run (`python -m bench.run`)."""
