"""Benchmarks: each prints its figures; run as scripts (python benchmarks/NAME.py --help)."""
