"""Shared steps of the cryptographic operations: the key, its parameters, and error translation."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from kms.crypto.errors import BadParameters, CryptoError, MissingIV
from kms.kmip.attributes import CryptographicParameters
from kms.kmip.enums import ResultReason
from kms.kmip.errors import KmipError


def merged_parameters(
    request: CryptographicParameters | None, registered: CryptographicParameters | None
) -> CryptographicParameters | None:
    """Request parameters override, field by field, those registered with the key (KMIP 2.1 §6.1.18)."""
    if registered is None:
        return request
    if request is None:
        return registered
    values = {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}
    for f in dataclasses.fields(registered):
        if values[f.name] is None:
            values[f.name] = getattr(registered, f.name)
    return CryptographicParameters(**values)


@contextmanager
def crypto_errors() -> Iterator[None]:
    """Map crypto-layer failures to KMIP result reasons (the reasons the OASIS test cases expect)."""
    try:
        yield
    except CryptoError as exc:
        raise KmipError(ResultReason.CryptographicFailure, str(exc)) from None
    except MissingIV as exc:
        raise KmipError(ResultReason.InvalidMessage, f"missing-iv: {exc}") from None
    except BadParameters as exc:
        raise KmipError(ResultReason.GeneralFailure, str(exc)) from None
