"""Certificates of the bootstrap flow: the bootstrap server's RA-TLS certificate, the CSR of the API key, and the
checks on what the owner sends back (POST /certificate, POST /pkcs12-password).

Checks on an uploaded chain, each a ProvisioningError (400) with a one-line reason:
- it parses as PEM certificates (at most MAX_CHAIN certificates), leaf first;
- the leaf's key is the expected key (the API key derived from sk, or the PKCS#12's own key);
- every certificate of the chain is valid now (not expired, not yet valid);
- each certificate is signed by the next one (`verify_directly_issued_by`: issuer name and signature). A lone leaf
  is accepted: the owner's clients hold the CA, and the server cannot check what it is not given.
The chain is the owner's own choice of trust; these checks catch mistakes (wrong file, wrong key, expired CA),
they do not decide whom clients trust.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import socket
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from attestation.ratls import build_certificate, provider_quote_fn, spki_der
from attestation.tee import TeeProvider
from bootstrap.errors import ProvisioningError

MAX_CHAIN = 10
MAX_SANS = 100
MAX_SUBJECT_CHARS = 1024
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


# ------------------------------------------------------------------------------------------------ names


def parse_subject(text: object) -> x509.Name:
    """An RFC 4514 subject ("CN=...,O=..."); ProvisioningError when empty or malformed."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_SUBJECT_CHARS:
        raise ProvisioningError(f"subject must be a non-empty RFC 4514 name of at most {MAX_SUBJECT_CHARS} chars")
    try:
        name = x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise ProvisioningError(f"subject is not an RFC 4514 name: {exc}") from None
    if not list(name):
        raise ProvisioningError("subject must name at least one attribute")
    return name


def _valid_dns_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    if labels and labels[0] == "*":  # a wildcard leftmost label is the CA's call, not ours
        labels = labels[1:]
    return 0 < len(name) <= 253 and bool(labels) and all(_DNS_LABEL.match(label) for label in labels)


def parse_sans(value: object) -> list[str]:
    """SANs of the CSR: a list of DNS names and IP addresses (may be empty or absent)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_SANS:
        raise ProvisioningError(f"sans must be a list of at most {MAX_SANS} names")
    sans: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ProvisioningError("every SAN must be a string")
        try:
            ipaddress.ip_address(item)
        except ValueError:
            if not _valid_dns_name(item):
                raise ProvisioningError(f"SAN {item[:100]!r} is neither an IP address nor a DNS name") from None
        sans.append(item)
    return sans


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def bootstrap_sans(hostname: str) -> list[str]:
    """The names the bootstrap server answers to: this machine's host name, localhost, 127.0.0.1, and the
    listening address when it is a specific one (not 0.0.0.0 / ::)."""
    names = [socket.gethostname(), "localhost", "127.0.0.1"]
    if hostname not in ("0.0.0.0", "::", ""):
        names.append(hostname)
    out: list[str] = []
    for name in names:
        if name and name not in out and (_is_ip(name) or _valid_dns_name(name)):
            out.append(name)
    return out


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------------ building


def bootstrap_certificate(
    key: ec.EllipticCurvePrivateKey,
    provider: TeeProvider,
    tee: str,
    *,
    subject: str,
    days: int,
    sans: Sequence[str],
    now: datetime | None = None,
) -> x509.Certificate:
    """The self-signed RA-TLS certificate of the bootstrap key (spec/bootstrap.md §2): claims
    {"pubkey-hash": [1, SHA-256(SPKI)], "tee": tee}, evidence report_data = SHA-256(claims) || zeros."""
    return build_certificate(
        key, x509.Name.from_rfc4514_string(subject), provider_quote_fn(provider), tee=tee, days=days, sans=sans,
        now=now,
    )


def build_csr(key: ec.EllipticCurvePrivateKey, subject: x509.Name, sans: Sequence[str]) -> str:
    """PEM CSR signed with the API key: the subject and SANs asked for, TLS server and client use. The CA decides
    what the certificate finally says; this only asks."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(s) for s in sans]), critical=False)
    builder = builder.add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
    )
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


# ------------------------------------------------------------------------------------------------ checking


def load_chain(chain_pem: object) -> list[x509.Certificate]:
    """The certificates of a PEM chain, leaf first; ProvisioningError when there are none or too many."""
    if not isinstance(chain_pem, str) or "-----BEGIN CERTIFICATE-----" not in chain_pem:
        raise ProvisioningError("chain_pem must be PEM certificates (leaf first)")
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError as exc:
        raise ProvisioningError(f"chain_pem does not parse as PEM certificates: {exc}") from None
    if not certs or len(certs) > MAX_CHAIN:
        raise ProvisioningError(f"chain_pem must hold 1 to {MAX_CHAIN} certificates")
    return certs


def check_chain(
    certs: Sequence[x509.Certificate], expected_spki: bytes, now: datetime, *, key_name: str = "the API key"
) -> None:
    """The checks of the module docstring on a chain, leaf first, for the key whose SPKI DER is `expected_spki`."""
    if spki_der(certs[0]) != expected_spki:
        raise ProvisioningError(f"the leaf certificate's key is not {key_name} of this server (wrong certificate?)")
    for position, cert in enumerate(certs):
        what = "the leaf certificate" if position == 0 else f"certificate {position + 1} of the chain"
        if now < cert.not_valid_before_utc:
            raise ProvisioningError(f"{what} is not valid yet (from {cert.not_valid_before_utc.isoformat()})")
        if now > cert.not_valid_after_utc:
            raise ProvisioningError(f"{what} has expired ({cert.not_valid_after_utc.isoformat()})")
    for position, (cert, issuer) in enumerate(itertools.pairwise(certs)):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError) as exc:
            raise ProvisioningError(
                f"certificate {position + 1} of the chain is not issued by certificate {position + 2} ({exc})"
            ) from None
        except InvalidSignature:
            raise ProvisioningError(
                f"the signature of certificate {position + 1} does not verify with certificate {position + 2}'s key"
            ) from None


def order_chain(leaf: x509.Certificate, others: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """leaf, then its issuers found among `others` (a PKCS#12 keeps its extra certificates in no set order);
    certificates that are not on the leaf's path are left out."""
    chain = [leaf]
    pool = list(others)
    while pool:
        current = chain[-1]
        if current.issuer == current.subject:
            break
        found = None
        for candidate in pool:
            try:
                current.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature):  # another issuer or another key: not on the path
                continue
            found = candidate
            break
        if found is None:
            break
        chain.append(found)
        pool.remove(found)
    return chain


def load_pkcs12(data: bytes, password: str, now: datetime) -> tuple[str, str]:
    """(chain PEM, key PEM) of a PKCS#12 whose chain passes `check_chain` for its own key; ProvisioningError when
    the password is wrong, the file is not a PKCS#12, or it lacks a key or a certificate (the reason never quotes
    the password)."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except (ValueError, TypeError):
        raise ProvisioningError("cannot read the PKCS#12: wrong password or not a PKCS#12 file") from None
    if key is None or cert is None:
        raise ProvisioningError("the PKCS#12 must hold a private key and its certificate")
    chain = order_chain(cert, extra or [])
    check_chain(chain, spki_der(key), now, key_name="the key of the PKCS#12")
    chain_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return chain_pem, key_pem
