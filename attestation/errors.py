"""Typed failures: a format error names the field, a verification error names the check."""

from __future__ import annotations


class AttestationError(Exception):
    """Base of every failure of this package."""


class FormatError(AttestationError):
    """Evidence bytes that are truncated or inconsistent; `field` names the first field that could not be read."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class VerificationError(AttestationError):
    """Evidence that does not verify; `check` names the failed check (e.g. "pck-chain", "quote-signature")."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check
        self.message = message
