"""The command groups of ckms, one module per top-level command."""
