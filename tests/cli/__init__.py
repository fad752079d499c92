"""Tests of the ckms command line client."""
