"""Shared steps of the cryptographic operations: the key, its parameters, and error translation."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.lifecycle import check_process, check_protect, check_usage
from kms.core.managed import ManagedObject
from kms.core.material import key_bytes
from kms.crypto.errors import BadParameters, CryptoError, MissingIV
from kms.kmip.attributes import CryptographicParameters
from kms.kmip.enums import CryptographicAlgorithm, CryptographicUsageMask, ObjectType, ResultReason
from kms.kmip.errors import KmipError

if TYPE_CHECKING:
    from kms.core.kms import Kms


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


def check_symmetric(mo: ManagedObject) -> None:
    """Symmetric operations take symmetric keys only (a SecretData is a secret, not a cipher key)."""
    if mo.object_type != ObjectType.SymmetricKey:
        raise KmipError(
            ResultReason.InvalidObjectType,
            f"object {mo.uid} is a {mo.object_type.name}; this operation needs a SymmetricKey",
        )


def check_stream_key(kms: Kms, ctx: RequestContext, stream_uid: str, named: str | None) -> None:
    """A continuation may name its key, but only the key the stream was started with."""
    if named is not None and kms.resolve_uid(ctx, named) != stream_uid:
        raise KmipError(ResultReason.InvalidCorrelationValue, "this correlation value belongs to another object")


@dataclasses.dataclass(frozen=True, slots=True)
class KeyInUse:
    mo: ManagedObject
    key: bytes
    algorithm: CryptographicAlgorithm
    params: CryptographicParameters | None


def symmetric_key_for(
    kms: Kms,
    ctx: RequestContext,
    uid: str | None,
    usage: CryptographicUsageMask,
    requested: CryptographicParameters | None,
    *,
    protect: bool,
    default_algorithm: CryptographicAlgorithm | None = None,
) -> KeyInUse:
    """The symmetric key an operation names, after every check: type, lifecycle state and dates, usage mask."""
    mo = kms.load(ctx, uid, include_destroyed=False)
    check_symmetric(mo)
    (check_protect if protect else check_process)(mo.attributes, ctx.now, mo.uid)
    check_usage(mo.attributes, usage, mo.uid)
    algorithm = mo.attributes.cryptographic_algorithm or default_algorithm
    if algorithm is None:
        raise KmipError(ResultReason.InvalidField, f"object {mo.uid} has no CryptographicAlgorithm")
    params = merged_parameters(requested, mo.attributes.cryptographic_parameters)
    return KeyInUse(mo, key_bytes(mo.obj, mo.uid), algorithm, params)
