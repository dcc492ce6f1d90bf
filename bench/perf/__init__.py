"""Throughput benchmark of the crawler (python -m bench.perf)."""
