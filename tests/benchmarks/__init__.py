"""Benchmarks: ``python -m tests.benchmarks.bench_capture`` (not collected by pytest)."""
