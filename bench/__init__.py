"""Benchmark suite for llmrouter-tui (issue 6). Run `python -m bench` (see BENCHMARKS.md).

Benchmarks are not tests: nothing here is collected by pytest, every loop is bounded in
count and time, every socket targets 127.0.0.1, and every process started here is stopped
by the suite itself.
"""
