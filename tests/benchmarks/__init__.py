"""Benchmarks: `python -m tests.benchmarks [names...]` runs bench_<name>.py files' main().

Benchmarks are not tests: pytest does not collect them (their files are not test_*.py).
"""
