"""Verify an AWS Nitro Enclaves attestation document (spec/attestation.md §4).

Steps, each failing with a `VerificationError` whose `check` is stable:

- "nitro-signature": the COSE_Sign1 signature (ES384, r || s) over
  `["Signature1", protected, b"", payload]` with the P-384 key of `certificate`.
- "nitro-root": `cabundle[0]` is byte-for-byte one of `roots.nitro` (the pinned AWS root G1 by default).
- "nitro-chain": `[certificate, cabundle[N-1], ..., cabundle[1]]` up to that root: names, signatures and the
  validity of every certificate **at the document timestamp** (a leaf lives ~3 hours, so "now" would reject
  every real sample; the timestamp is inside the signed payload).
- "nitro-key-usage": every certificate ecdsa-with-SHA384; CA certificates have basicConstraints CA and keyUsage
  keyCertSign, and their pathLenConstraint admits the CAs below them; the leaf is not a CA and has keyUsage
  digitalSignature.
- "nitro-timestamp": the document is not from the future: timestamp <= now + CLOCK_SKEW (60 s, so that a
  verifier whose clock is a little behind the enclave's still accepts a fresh document).
- "nitro-expired": freshness. The document may be no older than its own signing certificate: `now` must be
  before the leaf's notAfter. AWS issues enclave leaves for ~3 hours, so this caps a document's useful life at
  that without a policy knob; proof of *liveness* still needs a nonce (see `Claims.nonce`).
- "nitro-pcrs": PCR0, PCR1 and PCR2 are present (they decide the measurement and debug mode).
- Policy: "debug" (PCR0, PCR1 and PCR2 all zero = an enclave started with --debug-mode, whose measurements AWS
  zeroes; refused unless `policy.allow_debug`; PCR3/4/8 are set by the parent and say nothing about debug),
  "measurement" (PCR0 in `policy.measurements`), "pcrs" (each `policy.pcrs` entry equal), "report-data"
  (`policy.report_data` equal to `user_data`, byte for byte; nonce and public_key are returned in the claims
  for the caller to compare, since the Policy has one report-data slot and RA-TLS binds through user_data).

Malformed documents raise `FormatError` (from `attestation.formats.nitro`) naming the field.
"""

from __future__ import annotations

import hmac
import warnings
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.errors import FormatError, VerificationError
from attestation.formats.nitro import NitroDocument
from attestation.roots import AWS_NITRO_ROOT_SHA256, TrustedRoots, fingerprint
from attestation.verify.claims import Claims
from attestation.verify.policy import Policy
from attestation.verify.x509util import check_chain, ecdsa_raw_verify, load_cert

CLOCK_SKEW = timedelta(seconds=60)
DEBUG_PCRS = (0, 1, 2)
_ECDSA_SHA384 = x509.SignatureAlgorithmOID.ECDSA_WITH_SHA384


def _cn(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else cert.subject.rfc4514_string()


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # duplicate or undecodable extensions
        raise VerificationError("nitro-key-usage", f"{_cn(cert)}: bad extensions ({exc})") from None


def _check_usage(leaf: x509.Certificate, cas: list[x509.Certificate]) -> None:
    """`cas` from the leaf's issuer up to (and including) the root."""
    check = "nitro-key-usage"
    for cert in [leaf, *cas]:
        if cert.signature_algorithm_oid != _ECDSA_SHA384:
            raise VerificationError(check, f"{_cn(cert)} is not signed with ecdsa-with-SHA384")
    bc = _extension(leaf, x509.BasicConstraints)
    if isinstance(bc, x509.BasicConstraints) and bc.ca:
        raise VerificationError(check, f"the enclave certificate {_cn(leaf)} is a CA certificate")
    ku = _extension(leaf, x509.KeyUsage)
    if not isinstance(ku, x509.KeyUsage) or not ku.digital_signature:
        raise VerificationError(check, f"the enclave certificate {_cn(leaf)} lacks keyUsage digitalSignature")
    for below, cert in enumerate(cas):  # `below` = number of CA certificates under this one in the path
        bc = _extension(cert, x509.BasicConstraints)
        if not isinstance(bc, x509.BasicConstraints) or not bc.ca:
            raise VerificationError(check, f"{_cn(cert)} is not a CA certificate")
        if bc.path_length is not None and below > bc.path_length:
            raise VerificationError(
                check, f"{_cn(cert)} allows {bc.path_length} CA certificates below it, the path has {below}"
            )
        ku = _extension(cert, x509.KeyUsage)
        if not isinstance(ku, x509.KeyUsage) or not ku.key_cert_sign:
            raise VerificationError(check, f"{_cn(cert)} lacks keyUsage keyCertSign")


def _load(der: bytes, field: str) -> x509.Certificate:
    """A certificate whose lazily parsed parts (key, names, extensions) are decoded now, so that a corrupt one
    fails here as FormatError(field) and not later with whatever `cryptography` raises."""
    try:
        cert = load_cert(der, field)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Attribute's length must be >= 2" for a bad country name
            cert.public_key()
            _ = cert.subject, cert.issuer, cert.extensions, cert.signature_algorithm_oid
    except FormatError:
        raise
    except Exception as exc:  # InvalidVersion, UnsupportedAlgorithm, ValueError...
        raise FormatError(field, f"not a usable X.509 certificate ({type(exc).__name__}: {exc})") from None
    return cert


def _trusted_root(bundle_root: bytes, roots: TrustedRoots) -> x509.Certificate:
    for root in roots.nitro:
        if root.public_bytes(serialization.Encoding.DER) == bundle_root:
            return root
    names = ", ".join(_cn(r) for r in roots.nitro) or "none"
    raise VerificationError("nitro-root", f"cabundle[0] is not a trusted Nitro root (trusted: {names})")


def verify_nitro(evidence: bytes, *, now: datetime, policy: Policy, roots: TrustedRoots) -> Claims:
    if now.tzinfo is None:
        raise VerificationError("time", "`now` must be timezone-aware")
    doc = NitroDocument.from_bytes(evidence)
    p = doc.payload

    leaf = _load(p.certificate, "certificate")
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise VerificationError("nitro-signature", f"the enclave certificate {_cn(leaf)} has no P-384 key")
    ecdsa_raw_verify(key, doc.signature, doc.signed_bytes(), hashes.SHA384(), "nitro-signature")

    anchor = _trusted_root(p.cabundle[0], roots)
    intermediates = [_load(p.cabundle[i], f"cabundle[{i}]") for i in range(len(p.cabundle) - 1, 0, -1)]
    doc_time = p.time
    check_chain([leaf, *intermediates], anchor, doc_time, "nitro-chain")
    _check_usage(leaf, [*intermediates, anchor])

    if doc_time > now + CLOCK_SKEW:
        raise VerificationError(
            "nitro-timestamp", f"the document is dated {doc_time.isoformat()}, after now ({now.isoformat()})"
        )
    if now > leaf.not_valid_after_utc:
        raise VerificationError(
            "nitro-expired",
            f"the document (dated {doc_time.isoformat()}) outlived its enclave certificate, which expired "
            f"{leaf.not_valid_after_utc.isoformat()}; now is {now.isoformat()}",
        )

    pcr = {i: v for i, v in p.pcrs}
    missing = [i for i in DEBUG_PCRS if i not in pcr]
    if missing:
        raise VerificationError("nitro-pcrs", f"PCR{', PCR'.join(map(str, missing))} missing from the document")
    debug = all(not any(pcr[i]) for i in DEBUG_PCRS)
    if debug and not policy.allow_debug:
        raise VerificationError("debug", "the enclave runs in debug mode (PCR0, PCR1 and PCR2 are zero)")
    measurement = pcr[0]
    if policy.measurements and not any(hmac.compare_digest(measurement, m) for m in policy.measurements):
        raise VerificationError("measurement", f"PCR0 {measurement.hex()} is not an expected measurement")
    for index, expected in policy.pcrs:
        actual = pcr.get(index)
        if actual is None or not hmac.compare_digest(actual, expected):
            shown = actual.hex() if actual is not None else "absent"
            raise VerificationError("pcrs", f"PCR{index} is {shown}, expected {expected.hex()}")
    if policy.report_data is not None and (
        p.user_data is None or not hmac.compare_digest(p.user_data, policy.report_data)
    ):
        raise VerificationError("report-data", "user_data does not match the expected report data")

    root_fp = fingerprint(anchor)
    return Claims(
        tee="nitro",
        measurement=measurement,
        report_data=p.user_data or b"",
        debug=debug,
        verified_at=now,
        root_fingerprint=root_fp,
        simulated=root_fp != AWS_NITRO_ROOT_SHA256,
        pcrs=tuple(sorted(p.pcrs)),
        nonce=p.nonce,
        public_key=p.public_key,
        details=(
            ("module_id", p.module_id),
            ("timestamp", doc_time.isoformat()),
            ("digest", p.digest),
            ("certificate_not_after", leaf.not_valid_after_utc.isoformat()),
        ),
    )
