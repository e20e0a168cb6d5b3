"""Benchmarking: timing, statistics, machine facts, results."""
