"""Typed protocol errors, mapped once at the edge to KMIP result reasons and HTTP statuses."""

from __future__ import annotations

from kms.kmip.enums import ResultReason


class KmipError(Exception):
    """A failure the client should see as a KMIP ResultReason with a human-readable message.

    Messages must never contain key material or other secrets: they travel to the client and into logs.
    """

    def __init__(self, reason: ResultReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"KmipError({self.reason.name}, {self.message!r})"


def invalid_message(message: str) -> KmipError:
    return KmipError(ResultReason.InvalidMessage, message)


def invalid_field(message: str) -> KmipError:
    return KmipError(ResultReason.InvalidField, message)
