"""Placeholder package: implemented by a later issue."""
