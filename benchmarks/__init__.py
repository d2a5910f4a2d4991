"""Capacity-planning benchmark harness of sevenp: every figure is a ratio to a ceiling measured in
the same run on the same machine (see benchmarks/runner.py for the entry point)."""
