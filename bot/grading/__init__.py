"""Grading: the grading card, saving grades, return / revision / excuse, undo — every write durable."""
