"""Owner binding (spec/bootstrap.md §4): who may provision.

The owner is named by the SHA-256 of the SubjectPublicKeyInfo (DER) of its TLS client certificate, from
--bootstrap-owner-key-sha256, or from the TEE itself: SEV-SNP HOST_DATA (32 bytes) or TDX MRCONFIGID (its first 32
of 48 bytes), set by whoever launches the guest and covered by every quote. The TEE value is read from the
evidence of the bootstrap certificate, i.e. exactly what a verifier sees, so the owner's key is attested too and
nobody who merely reaches the port can provision first.

A non-zero HOST_DATA / MRCONFIGID is taken as the owner hash (fail closed: if the launcher put something else
there, nobody can provision, rather than anybody). If both the flag and the TEE name an owner they must agree;
otherwise the server refuses to start, since one of them is wrong and guessing would bind the wrong owner.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography import x509

from attestation.errors import FormatError
from attestation.formats import snp
from attestation.formats.tdx import TdxQuote
from attestation.ratls import spki_der
from attestation.verify import detect_kind
from bootstrap.errors import NotOwnerError

OWNER_HASH_BYTES = 32


class OwnerConfigError(Exception):
    """The flag and the TEE name different owners."""


def attested_owner_hash(evidence: bytes) -> bytes | None:
    """HOST_DATA (SEV-SNP) or MRCONFIGID[:32] (TDX) of `evidence` when non-zero, else None (SGX has neither)."""
    try:
        kind = detect_kind(evidence)
        if kind == "sev-snp":
            report, _ = snp.parse_evidence(evidence)
            value, whole = report.host_data, report.host_data
        elif kind == "tdx":
            body = TdxQuote.parse(evidence).body
            whole = getattr(body, "mr_config_id", b"")
            value = whole[:OWNER_HASH_BYTES]
        else:
            return None
    except FormatError:
        return None
    return bytes(value) if any(whole) else None


def resolve_owner(flag_hex: str | None, evidence: bytes) -> tuple[bytes | None, str]:
    """(owner hash or None, where it comes from) from the flag and the evidence; OwnerConfigError on conflict."""
    attested = attested_owner_hash(evidence)
    flag = bytes.fromhex(flag_hex) if flag_hex else None
    if attested is not None and flag is not None and not hmac.compare_digest(attested, flag):
        raise OwnerConfigError(
            "--bootstrap-owner-key-sha256 differs from the owner key hash in the TEE's HOST_DATA/MRCONFIGID"
        )
    if attested is not None:
        return attested, "the TEE's HOST_DATA/MRCONFIGID"
    if flag is not None:
        return flag, "--bootstrap-owner-key-sha256"
    return None, "nobody"


def spki_sha256(cert: x509.Certificate) -> bytes:
    """SHA-256 of a certificate's SubjectPublicKeyInfo DER: the owner hash of that certificate's key."""
    return hashlib.sha256(spki_der(cert)).digest()


def check_owner(owner: bytes | None, peer_spki_sha256: bytes | None) -> None:
    """NotOwnerError unless no owner is bound or the TLS client certificate's key is the owner's."""
    if owner is None:
        return
    if peer_spki_sha256 is None:
        raise NotOwnerError("provisioning is bound to the owner's key: present the owner's TLS client certificate")
    if not hmac.compare_digest(owner, peer_spki_sha256):
        raise NotOwnerError("this TLS client certificate is not the owner's")
