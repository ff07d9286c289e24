"""Benchmarks: scripts that print numbers (``python -m benchmarks``). Not timed tests; CI does not run them."""
