"""Certificate chain checks shared by the vendor verifiers (explicit steps, each failing with a named check).

Vendor chains are not Web PKI: AMD signs with RSA-PSS, Intel's PCK leaf has no EKU, Nitro leaves live three
hours. So chains are walked by hand: signature by the issuer, validity at `now`, CA constraints, CRLs.
"""

from __future__ import annotations

import warnings
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import HashAlgorithm

from attestation.errors import FormatError, VerificationError


def load_cert(data: bytes, field: str = "certificate") -> x509.Certificate:
    """One certificate, DER or PEM, decoded in full now (AMD VCEKs have serial number 0: the warning is expected).

    `cryptography` decodes names, extensions and keys lazily, so a malformed certificate would otherwise fail
    later with an untyped exception in the middle of a check.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                cert = x509.load_pem_x509_certificate(data)
            else:
                cert = x509.load_der_x509_certificate(data)
            decode_fully(cert)
        except (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension, UnsupportedAlgorithm) as exc:
            raise FormatError(field, f"not a well-formed X.509 certificate ({exc})") from None
    return cert


def decode_fully(cert: x509.Certificate) -> None:
    """Touch every lazily decoded part (raises what `cryptography` raises on malformed content)."""
    _ = (cert.subject, cert.issuer, cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc)
    for ext in cert.extensions:
        _ = ext.value
    cert.public_key()
    _ = cert.signature_hash_algorithm


def load_pem_chain(data: bytes, field: str = "certificate chain") -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order (a trailing NUL, as in Intel quotes, is ignored)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            certs = x509.load_pem_x509_certificates(data.rstrip(b"\x00"))
            for cert in certs:
                decode_fully(cert)
        except (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension, UnsupportedAlgorithm) as exc:
            raise FormatError(field, f"not a well-formed PEM certificate bundle ({exc})") from None
    if not certs:
        raise FormatError(field, "no certificate")
    return certs


def _name(cert: x509.Certificate) -> str:
    try:
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(cn[0].value) if cn else cert.subject.rfc4514_string()
    except ValueError:
        return "certificate"


def check_validity(cert: x509.Certificate, now: datetime, check: str) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise VerificationError(
            check,
            f"{_name(cert)} is valid {cert.not_valid_before_utc.isoformat()} .. "
            f"{cert.not_valid_after_utc.isoformat()}, not at {now.isoformat()}",
        )


def check_issued_by(cert: x509.Certificate, issuer: x509.Certificate, check: str) -> None:
    """Signature (ECDSA, RSA PKCS#1 v1.5 or RSA-PSS) and names; the issuer must be a CA."""
    if cert.issuer != issuer.subject:
        raise VerificationError(check, f"{_name(cert)} was not issued by {_name(issuer)}")
    try:
        bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not bc.ca:
            raise VerificationError(check, f"{_name(issuer)} is not a CA certificate")
    except x509.ExtensionNotFound:
        raise VerificationError(check, f"{_name(issuer)} has no basicConstraints, so it is not a CA") from None
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        message = f"the signature of {_name(cert)} by {_name(issuer)} is invalid ({exc})"
        raise VerificationError(check, message) from None


def check_chain(
    chain: list[x509.Certificate], anchor: x509.Certificate, now: datetime, check: str
) -> None:
    """`chain` is leaf first, ending with the certificate the anchor issued (or the anchor itself)."""
    certs = list(chain)
    if certs and certs[-1] == anchor:
        certs.pop()
    if not certs:
        raise VerificationError(check, "empty certificate chain")
    check_validity(anchor, now, check)
    check_issued_by(anchor, anchor, check)  # the anchor must be a self-signed CA
    for cert, issuer in zip(certs, [*certs[1:], anchor], strict=True):
        check_validity(cert, now, check)
        check_issued_by(cert, issuer, check)


def check_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate, now: datetime, check: str) -> None:
    if crl.issuer != issuer.subject:
        raise VerificationError(check, f"the CRL was issued by {crl.issuer.rfc4514_string()}, not {_name(issuer)}")
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise VerificationError(check, f"the CRL signature of {_name(issuer)} is invalid")
    next_update = crl.next_update_utc
    if crl.last_update_utc > now or next_update is None or next_update < now:
        raise VerificationError(
            check,
            f"the CRL of {_name(issuer)} is valid {crl.last_update_utc.isoformat()} .. "
            f"{next_update.isoformat() if next_update else '?'}, not at {now.isoformat()}",
        )


def check_not_revoked(cert: x509.Certificate, crl: x509.CertificateRevocationList, check: str) -> None:
    if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        raise VerificationError(check, f"{_name(cert)} (serial {cert.serial_number:x}) is revoked")


def ecdsa_raw_verify(
    key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes, algorithm: HashAlgorithm, check: str,
    byteorder: str = "big",
) -> None:
    """Verify a raw r||s ECDSA signature (halves of equal size; AMD writes them little-endian, zero-padded)."""
    half = len(signature) // 2
    r = int.from_bytes(signature[:half], byteorder)  # type: ignore[arg-type]
    s = int.from_bytes(signature[half:], byteorder)  # type: ignore[arg-type]
    try:
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(algorithm))
    except (InvalidSignature, ValueError) as exc:
        raise VerificationError(check, "the signature does not verify") from exc
