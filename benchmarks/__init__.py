"""Benchmarks of mmclaude: scripts that print figures (medians, p99) and write them to
``benchmarks/results/<name>.json``. They are not tests: nothing here passes or fails on time.

Run one with ``python -m benchmarks.<name>``, all with ``python -m benchmarks.run_all``.
"""
