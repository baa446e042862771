"""Benchmarks: scripts that measure the bot at company scale and write bench/results/*.json."""
