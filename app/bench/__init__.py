"""Benchmarks that drive the real service (`kakanai bench ...`)."""
