"""Benchmarks of the KMS server (plain scripts, not tests): see bench/README.md."""
