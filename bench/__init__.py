"""Benchmarks (`python -m bench`): Gradebot against a naive Graph client and a bare botbuilder bot."""
