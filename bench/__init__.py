"""Benchmarks that print tables (rich) with a ratio to a ceiling measured in the same run."""
