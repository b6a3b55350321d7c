"""Benchmarks of secctx-conformance: `python -m benchmarks.run --help`."""
