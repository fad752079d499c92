"""Build variants of simulated evidence and collateral, re-signed with the simulated keys, so that each test reaches
exactly the check it is about."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from attestation.formats.sgx import SgxQuoteV3, parse_quote
from attestation.formats.tdx import TdxQuote
from attestation.tee.sim_intel import SimIntelPki, sign_raw
from attestation.verify.intel_collateral import QuoteCollateral

Mutator = Callable[[dict[str, Any]], None]


def resign_collateral(
    pki: SimIntelPki,
    kind: str,
    *,
    tcb_info: Mutator | None = None,
    qe_identity: Mutator | None = None,
    root_crl: bytes | None = None,
    pck_crl: bytes | None = None,
) -> str:
    """The PKI's collateral with the TCB Info / QE Identity JSON changed by the mutators and signed again."""
    col = QuoteCollateral.from_json(pki.collateral(kind))
    changes: dict[str, Any] = {}
    if tcb_info is not None:
        obj = json.loads(col.tcb_info)
        tcb_info(obj)
        text = json.dumps(obj, separators=(",", ":"))
        changes.update(tcb_info=text, tcb_info_signature=sign_raw(pki.tcb_signing_key, text.encode()))
    if qe_identity is not None:
        obj = json.loads(col.qe_identity)
        qe_identity(obj)
        text = json.dumps(obj, separators=(",", ":"))
        changes.update(qe_identity=text, qe_identity_signature=sign_raw(pki.tcb_signing_key, text.encode()))
    if root_crl is not None:
        changes["root_ca_crl"] = root_crl
    if pck_crl is not None:
        changes["pck_crl"] = pck_crl
    return dataclasses.replace(col, **changes).to_json()


def crl(pki: SimIntelPki, issuer: str, revoked: tuple[x509.Certificate, ...] = (), *, start: datetime,
        signer: str | None = None) -> bytes:
    """A CRL naming `issuer` ("root" or "pck_ca") revoking `revoked`, signed by `signer`'s key (default: issuer)."""
    certs = {"root": (pki.root, pki.root_key), "pck_ca": (pki.pck_ca, pki.pck_ca_key)}
    issuer_cert, _ = certs[issuer]
    _, key = certs[signer or issuer]
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(start)
        .next_update(start + timedelta(days=3650))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(start).build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def resign_quote(pki: SimIntelPki, quote: SgxQuoteV3 | TdxQuote) -> bytes:
    """The quote with a fresh attestation-key signature over its (possibly changed) header and body."""
    signature = sign_raw(pki.attestation_key, quote.signed_bytes())
    sig = dataclasses.replace(quote.signature_data, quote_signature=signature)
    return dataclasses.replace(quote, signature_data=sig).serialize()  # type: ignore[arg-type]


def with_body(pki: SimIntelPki, data: bytes, **changes: Any) -> bytes:
    """Change body fields of a simulated quote and sign it again (the platform vouches for the new body)."""
    quote = parse_quote(data)
    return resign_quote(pki, dataclasses.replace(quote, body=dataclasses.replace(quote.body, **changes)))


def with_header(pki: SimIntelPki, data: bytes, **changes: Any) -> bytes:
    quote = parse_quote(data)
    return resign_quote(pki, dataclasses.replace(quote, header=dataclasses.replace(quote.header, **changes)))


def first_level(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["tcbLevels"][0]
