"""Allow `python -m ckms`, for environments where the console script is not on PATH (tests, venvs)."""

from ckms.cli import main

main()
