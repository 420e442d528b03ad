"""Benchmarks: Gradebot's Graph access against a deliberately naive client, measured in one run (`bench.run`)."""
