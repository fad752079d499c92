"""RA-TLS certificates: a self-signed X.509 certificate whose extension carries TEE evidence bound to its key.

Forms read (spec/attestation.md §5, spec/bootstrap.md §2):

- "standard" (`2.23.133.5.4.9`, Gramine >= 1.8 / CCC interoperable RA-TLS; the only form we emit): the
  extension value is CBOR tag 60000 around `[evidence: bstr, claims: bstr]`; `claims` is a serialized CBOR map
  `{"pubkey-hash": bstr(cbor([1, SHA-256(DER SubjectPublicKeyInfo)])), "nonce"?: bstr, "tee"?: text}` and the
  evidence's 64-byte report data is `SHA-256(claims) || 32 zero bytes` (our choice, as Gramine's placement is
  unconfirmed; a Nitro enclave carries those 64 bytes as user_data). Readers also accept `pubkey-hash` as a bare
  `[alg, digest]` array, and hash-alg ids 7 (SHA-384) and 8 (SHA-512) of the IANA Named Information registry.
- "cosmian-sgx" (`1.2.840.113741.1337.6`), "cosmian-sev" (`.7`), "cosmian-tdx" (`.8`): the raw evidence as the
  extension value; report_data[0:32] = SHA-256 of the certificate key as a 65-byte uncompressed SEC1 point. The
  last 32 bytes are free "extra data" (zero in practice, but Cosmian 4.10's SGX quotes carry leftover bytes
  there), so only the first 32 bytes bind: the expected report data copies the evidence's own last 32 bytes.
- "gramine-legacy" (`.6` as well): raw SGX quote, report_data = SHA-256(DER SubjectPublicKeyInfo) || 32 zeros.

`.6` is ambiguous between Cosmian and Gramine legacy. The reader peeks at the quote's (not yet authenticated)
report data: if its first half is SHA-256(SPKI) the form is "gramine-legacy", if it is SHA-256(point)
"cosmian-sgx"; if neither, "cosmian-sgx" for an EC key and "gramine-legacy" otherwise, and verification then fails
"ratls-binding". The choice cannot be abused: whichever binding matches, it names this certificate's key, and the
vendor verifier checks the same report data under the quote signature.

Cosmian SEV values: the 1184-byte report, then either nothing, or the Cosmian tee-tools v2 layout (u32 LE
certificate count, then per certificate a u32 LE length and a `CertTableEntry` = 16-byte GUID || DER), or the
older bincode layout (u64 LE count, then per certificate a u32 LE `CertType` variant, 1 ARK, 2 ASK, 3 VCEK,
4 VLEK, 5 CRL (skipped), a u64 LE length and the DER; variant numbers read off a Cosmian test certificate). Either
way the certificates are re-framed as an SNP extended report (report || certificate table, see
`attestation.formats.snp`), so the AMD verifier finds the VCEK without a `vcek=` argument.

Evidence in the standard form may itself be an SNP extended report (report followed by its certificate table):
it is passed on unchanged and the AMD verifier reads the table.

Checks of `verify_certificate` / `verify_claims_evidence`, each a `VerificationError`:
"ratls-certificate" (not parseable, bad self-signature, not valid at `now`), "ratls-extension" (no RA-TLS
extension, or one that does not decode), "ratls-binding" (claims name another key, report data is not the hash
the form requires), "ratls-nonce" (the caller's nonce is not in the claims), "ratls-evidence" (malformed
evidence), then whatever check of the vendor verifier fails ("nitro-signature", "debug", "measurement", ...).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from attestation.errors import FormatError, VerificationError
from attestation.formats import nitro as nitro_format
from attestation.formats.reader import Reader
from attestation.roots import TrustedRoots
from attestation.verify import Claims, Policy, detect_kind, verify_evidence
from attestation.verify.x509util import check_validity, load_cert

OID_STANDARD = x509.ObjectIdentifier("2.23.133.5.4.9")
OID_SGX = x509.ObjectIdentifier("1.2.840.113741.1337.6")  # Cosmian SGX and Gramine legacy
OID_SEV = x509.ObjectIdentifier("1.2.840.113741.1337.7")  # Cosmian SEV-SNP
OID_TDX = x509.ObjectIdentifier("1.2.840.113741.1337.8")  # Cosmian TDX
EVIDENCE_TAG = 60000
HASH_SHA256, HASH_SHA384, HASH_SHA512 = 1, 7, 8  # IANA Named Information Hash Algorithm Registry
_HASHES: dict[int, Callable[[bytes], Any]] = {
    HASH_SHA256: hashlib.sha256,
    HASH_SHA384: hashlib.sha384,
    HASH_SHA512: hashlib.sha512,
}
REPORT_DATA_SIZE = 64
BACKDATE = timedelta(minutes=5)  # notBefore of built certificates, for verifiers whose clock lags a little

FORM_STANDARD = "standard"
FORM_COSMIAN_SGX = "cosmian-sgx"
FORM_COSMIAN_SEV = "cosmian-sev"
FORM_COSMIAN_TDX = "cosmian-tdx"
FORM_GRAMINE_LEGACY = "gramine-legacy"

SNP_REPORT_SIZE = 0x4A0
_SNP_GUIDS = {
    "VCEK": uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd"),
    "VLEK": uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1"),
    "ASK": uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782"),
    "ARK": uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae"),
}
_BINCODE_CERT_TYPES = {1: "ARK", 2: "ASK", 3: "VCEK", 4: "VLEK", 5: "CRL"}
_MAX_SEV_CERTS = 16


# ------------------------------------------------------------------------------------------------ key hashes


def spki_der(key: x509.Certificate | ec.EllipticCurvePrivateKey | Any) -> bytes:
    """DER SubjectPublicKeyInfo of a certificate, a public key or a private key."""
    if isinstance(key, x509.Certificate) or hasattr(key, "private_bytes"):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _ec_point(cert: x509.Certificate) -> bytes | None:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return None
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def make_claims(spki: bytes, *, nonce: bytes | None = None, tee: str | None = None) -> bytes:
    """Serialized standard claims: {"pubkey-hash": cbor([1, SHA-256(spki)]), "nonce"?: nonce, "tee"?: tee}."""
    claims: dict[str, Any] = {"pubkey-hash": cbor2.dumps([HASH_SHA256, hashlib.sha256(spki).digest()])}
    if nonce is not None:
        claims["nonce"] = bytes(nonce)
    if tee is not None:
        claims["tee"] = tee
    return cbor2.dumps(claims)


def report_data_for_claims(claims: bytes) -> bytes:
    """The 64-byte report data binding serialized claims: SHA-256(claims) || 32 zero bytes."""
    return hashlib.sha256(claims).digest() + bytes(32)


def parse_claims(claims: bytes) -> dict[str, Any]:
    """The claims map (FormatError("claims") unless a map with text keys, a pubkey-hash, a bstr nonce)."""
    value = nitro_format.cbor_loads_exact(claims, "claims")
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise FormatError("claims", "must be a CBOR map with text keys")
    if "pubkey-hash" not in value:
        raise FormatError("claims", "no pubkey-hash")
    _pubkey_hash(value["pubkey-hash"])
    if "nonce" in value and not isinstance(value["nonce"], bytes):
        raise FormatError("claims", "nonce must be a byte string")
    if "tee" in value and not isinstance(value["tee"], str):
        raise FormatError("claims", "tee must be a text string")
    return dict(value)


def _pubkey_hash(value: object) -> tuple[int, bytes]:
    """(hash-alg id, digest) from the pubkey-hash claim: bstr(cbor([alg, digest])) or a bare [alg, digest]."""
    if isinstance(value, bytes):
        value = nitro_format.cbor_loads_exact(value, "claims")
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not isinstance(value[0], int)
        or isinstance(value[0], bool)
        or not isinstance(value[1], bytes)
    ):
        raise FormatError("claims", "pubkey-hash must be [hash-alg-id, digest]")
    alg, digest = value
    if alg not in _HASHES:
        raise FormatError("claims", f"pubkey-hash algorithm {alg} is not SHA-256 (1), SHA-384 (7) or SHA-512 (8)")
    if len(digest) != _HASHES[alg](b"").digest_size:
        raise FormatError("claims", f"pubkey-hash digest of {len(digest)} bytes for algorithm {alg}")
    return alg, digest


def encode_extension(evidence: bytes, claims: bytes) -> bytes:
    """The standard extension value: CBOR tag 60000 around [evidence, claims]."""
    return cbor2.dumps(cbor2.CBORTag(EVIDENCE_TAG, [bytes(evidence), bytes(claims)]))


# ------------------------------------------------------------------------------------------------ building


def build_certificate(
    private_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    quote_fn: Callable[[bytes], bytes],
    *,
    nonce: bytes | None = None,
    tee: str | None = None,
    days: int = 365,
    sans: Sequence[str] = (),
    now: datetime | None = None,
) -> x509.Certificate:
    """A self-signed RA-TLS certificate in the standard form.

    quote_fn(report_data) returns the evidence (quote, SNP report or extended report, Nitro document) binding the
    64 bytes it is given. sans: DNS names and IP addresses. Valid from `now` - 5 minutes for `days` days; the
    key must be ECDSA P-256 (signed with SHA-256) or P-384 (SHA-384).
    """
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1 | ec.SECP384R1
    ):
        raise ValueError("an RA-TLS certificate key must be ECDSA P-256 or P-384")
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    spki = spki_der(private_key)
    claims = make_claims(spki, nonce=nonce, tee=tee)
    evidence = quote_fn(report_data_for_claims(claims))
    if not isinstance(evidence, bytes | bytearray) or not evidence:
        raise ValueError("quote_fn must return the evidence bytes")

    serial = 0
    while serial < 1:
        serial = x509.random_serial_number()
    public = private_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(OID_STANDARD, encode_extension(bytes(evidence), claims)), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(s) for s in sans]), critical=False)
    algorithm = hashes.SHA256() if isinstance(private_key.curve, ec.SECP256R1) else hashes.SHA384()
    return builder.sign(private_key, algorithm)


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def provider_quote_fn(provider: Any) -> Callable[[bytes], bytes]:
    """A `quote_fn` over an `attestation.tee` provider: its evidence bytes, with an SNP certificate table appended
    (an extended report) when the provider returns one in binary form."""

    def quote(report_data: bytes) -> bytes:
        ev = provider.quote(report_data)
        certs = ev.certificates
        if ev.kind == "sev-snp" and certs and not certs.lstrip().startswith(b"-----BEGIN"):
            return ev.data + certs
        return ev.data

    return quote


# ------------------------------------------------------------------------------------------------ reading


@dataclasses.dataclass(frozen=True)
class RaTlsEvidence:
    """What an RA-TLS certificate carries.

    form: "standard" | "cosmian-sgx" | "cosmian-sev" | "cosmian-tdx" | "gramine-legacy".
    evidence: the bytes to verify (for "cosmian-sev" re-framed as an SNP extended report when certificates came
    with the report). claims / claims_bytes: the standard form's claims (None otherwise).
    expected_report_data: the 64 bytes the evidence must report for the binding of this form to hold.
    certificates: (name, DER) of the certificates a Cosmian SEV value carried.
    """

    form: str
    oid: str
    extension_value: bytes
    evidence: bytes
    claims: dict[str, Any] | None
    claims_bytes: bytes | None
    expected_report_data: bytes
    certificates: tuple[tuple[str, bytes], ...] = ()


def evidence_report_data(evidence: bytes) -> bytes | None:
    """The report data the evidence claims, read at its format's offset WITHOUT verifying anything (None if the
    evidence is not recognised). SGX v3: quote[368:432]; TDX v4: quote[568:632]; TDX v5: after the 6-byte body
    descriptor; SEV-SNP: report[0x50:0x90]; Nitro: user_data (any length)."""
    try:
        kind = detect_kind(evidence)
    except FormatError:
        return None
    if kind == "nitro":
        try:
            return nitro_format.parse(evidence).payload.user_data or b""
        except FormatError:
            return None
    start: int | None = None
    if kind == "sev-snp":
        start = 0x50
    elif kind == "sgx":
        start = 48 + 320
    elif kind == "tdx":
        version = int.from_bytes(evidence[0:2], "little")
        if version == 4:
            start = 48 + 0x208
        elif len(evidence) >= 54:
            body_type = int.from_bytes(evidence[48:50], "little")
            start = 54 + (320 if body_type == 1 else 0x208)
    if start is None or len(evidence) < start + REPORT_DATA_SIZE:
        return None
    return evidence[start : start + REPORT_DATA_SIZE]


def _extensions(cert: x509.Certificate) -> dict[str, x509.Extension[x509.ExtensionType]]:
    try:
        return {ext.oid.dotted_string: ext for ext in cert.extensions}
    except Exception as exc:  # duplicate extensions, undecodable known extensions...
        raise FormatError("certificate", f"extensions do not decode ({exc})") from None


def _value(ext: x509.Extension[x509.ExtensionType]) -> bytes:
    value = ext.value
    if isinstance(value, x509.UnrecognizedExtension):
        return value.value
    return value.public_bytes()


def _read_standard(value: bytes) -> tuple[bytes, bytes, dict[str, Any]]:
    item = nitro_format.cbor_loads_exact(value, "ratls-extension")
    if not isinstance(item, cbor2.CBORTag) or item.tag != EVIDENCE_TAG:
        raise FormatError("ratls-extension", f"must be CBOR tag {EVIDENCE_TAG}")
    body = item.value
    if not isinstance(body, list | tuple) or len(body) != 2 or not all(isinstance(x, bytes) for x in body):
        raise FormatError("ratls-extension", "tag 60000 must hold [evidence: bstr, claims: bstr]")
    evidence, claims_bytes = body
    if not evidence:
        raise FormatError("ratls-extension", "empty evidence")
    return evidence, claims_bytes, parse_claims(claims_bytes)


def _read_sev(value: bytes) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """Cosmian SEV value -> (evidence for the AMD verifier, carried certificates)."""
    if len(value) < SNP_REPORT_SIZE:
        raise FormatError("ratls-extension", f"SEV-SNP value of {len(value)} bytes, a report is {SNP_REPORT_SIZE}")
    report, rest = value[:SNP_REPORT_SIZE], value[SNP_REPORT_SIZE:]
    if not rest:
        return report, ()
    certs: list[tuple[str, uuid.UUID | None, bytes]] | None = None
    for layout in (_sev_certs_v2, _sev_certs_bincode):
        try:
            certs = layout(rest)
            break
        except FormatError:
            continue
    if certs is None:
        raise FormatError(
            "ratls-extension", "the bytes after the SEV-SNP report are neither the tee-tools v2 nor the bincode layout"
        )
    from attestation.formats.snp import CertTable, serialise_evidence

    table_items = [(guid, der) for _, guid, der in certs if guid is not None]
    evidence = serialise_evidence(report, CertTable.build(table_items)) if table_items else report
    return evidence, tuple((name, der) for name, _, der in certs)


def _sev_certs_v2(rest: bytes) -> list[tuple[str, uuid.UUID | None, bytes]]:
    r = Reader(rest)
    count = r.u32("sev.count")
    if count > _MAX_SEV_CERTS:
        raise FormatError("sev.count", f"{count} certificates")
    out = []
    names = {guid: name for name, guid in _SNP_GUIDS.items()}
    for i in range(count):
        size = r.u32(f"sev.certs[{i}].length")
        if size <= 16:
            raise FormatError(f"sev.certs[{i}]", "shorter than a GUID and a certificate")
        entry = r.take(size, f"sev.certs[{i}]")
        guid = uuid.UUID(bytes=entry[:16])
        out.append((names.get(guid, str(guid)), guid, entry[16:]))
    if r.remaining:
        raise FormatError("sev", f"{r.remaining} trailing bytes")
    return out


def _sev_certs_bincode(rest: bytes) -> list[tuple[str, uuid.UUID | None, bytes]]:
    r = Reader(rest)
    count = r.u64("sev.count")
    if count > _MAX_SEV_CERTS:
        raise FormatError("sev.count", f"{count} certificates")
    out = []
    for i in range(count):
        variant = r.u32(f"sev.certs[{i}].type")
        if variant not in _BINCODE_CERT_TYPES:
            raise FormatError(f"sev.certs[{i}].type", f"unknown certificate type {variant}")
        size = r.u64(f"sev.certs[{i}].length")
        data = r.take(size, f"sev.certs[{i}]")
        name = _BINCODE_CERT_TYPES[variant]
        out.append((name, _SNP_GUIDS.get(name), data))  # a CRL has no table GUID: kept, not forwarded
    if r.remaining:
        raise FormatError("sev", f"{r.remaining} trailing bytes")
    return out


def _point_binding(point: bytes | None, evidence: bytes) -> bytes:
    """Cosmian forms: SHA-256(uncompressed point) || the evidence's own last 32 bytes (free extra data)."""
    rd = evidence_report_data(evidence)
    tail = rd[32:64] if rd is not None and len(rd) == REPORT_DATA_SIZE else bytes(32)
    head = hashlib.sha256(point).digest() if point is not None else bytes(32)
    return head + tail


def read_certificate(cert: x509.Certificate) -> RaTlsEvidence:
    """The RA-TLS evidence of `cert` (FormatError("ratls-extension") if it has none or it does not decode).

    When several RA-TLS extensions are present (Gramine >= 1.8 embeds the standard and the legacy one), the
    standard one is read.
    """
    exts = _extensions(cert)
    spki = spki_der(cert)
    if OID_STANDARD.dotted_string in exts:
        value = _value(exts[OID_STANDARD.dotted_string])
        evidence, claims_bytes, claims = _read_standard(value)
        return RaTlsEvidence(
            FORM_STANDARD, OID_STANDARD.dotted_string, value, evidence, claims, claims_bytes,
            report_data_for_claims(claims_bytes),
        )
    point = _ec_point(cert)
    if OID_SGX.dotted_string in exts:
        value = _value(exts[OID_SGX.dotted_string])
        spki_hash = hashlib.sha256(spki).digest()
        rd = evidence_report_data(value)
        gramine = rd is not None and hmac.compare_digest(rd[:32], spki_hash)
        cosmian = rd is not None and point is not None and hmac.compare_digest(rd[:32], hashlib.sha256(point).digest())
        if gramine or (not cosmian and point is None):
            return RaTlsEvidence(
                FORM_GRAMINE_LEGACY, OID_SGX.dotted_string, value, value, None, None, spki_hash + bytes(32)
            )
        return RaTlsEvidence(
            FORM_COSMIAN_SGX, OID_SGX.dotted_string, value, value, None, None, _point_binding(point, value)
        )
    if OID_SEV.dotted_string in exts:
        value = _value(exts[OID_SEV.dotted_string])
        evidence, certs = _read_sev(value)
        return RaTlsEvidence(
            FORM_COSMIAN_SEV, OID_SEV.dotted_string, value, evidence, None, None,
            _point_binding(point, evidence), certs,
        )
    if OID_TDX.dotted_string in exts:
        value = _value(exts[OID_TDX.dotted_string])
        return RaTlsEvidence(
            FORM_COSMIAN_TDX, OID_TDX.dotted_string, value, value, None, None, _point_binding(point, value)
        )
    raise FormatError("ratls-extension", "the certificate has no RA-TLS extension")


# ------------------------------------------------------------------------------------------------ verifying


def _check_claims(claims: Mapping[str, Any], spki: bytes, nonce: bytes | None) -> None:
    alg, digest = _pubkey_hash(claims.get("pubkey-hash"))
    if not hmac.compare_digest(digest, _HASHES[alg](spki).digest()):
        raise VerificationError("ratls-binding", "the claims' pubkey-hash is not the hash of this certificate's key")
    if nonce is not None:
        carried = claims.get("nonce")
        if not isinstance(carried, bytes) or not hmac.compare_digest(carried, nonce):
            raise VerificationError("ratls-nonce", "the claims do not carry the expected nonce")


def _verify_bound(
    form: str,
    evidence: bytes,
    expected: bytes,
    *,
    now: datetime,
    policy: Policy | None,
    roots: TrustedRoots | None,
    collateral: str | bytes | None,
    vcek: bytes | None,
    cert_chain: bytes | None,
) -> Claims:
    seen = evidence_report_data(evidence)
    if seen is not None and not hmac.compare_digest(seen, expected):
        raise VerificationError(
            "ratls-binding", f"the evidence's report data is not the {form} binding of this certificate's key"
        )
    forced = dataclasses.replace(policy or Policy(), report_data=expected)
    try:
        claims = verify_evidence(
            evidence, now=now, policy=forced, roots=roots, collateral=collateral, vcek=vcek, cert_chain=cert_chain
        )
    except FormatError as exc:
        raise VerificationError("ratls-evidence", str(exc)) from exc
    return dataclasses.replace(claims, details=(*claims.details, ("ratls_form", form)))


def verify_claims_evidence(
    evidence: bytes,
    claims: bytes,
    *,
    spki: bytes,
    now: datetime,
    policy: Policy | None = None,
    roots: TrustedRoots | None = None,
    nonce: bytes | None = None,
    collateral: str | bytes | None = None,
    vcek: bytes | None = None,
    cert_chain: bytes | None = None,
) -> Claims:
    """Verify standard-form evidence and claims given apart from a certificate (the fresh-nonce answer of
    `GET /attestation?nonce=` in spec/bootstrap.md §3): the claims name `spki` (the key of the TLS connection) and
    carry `nonce`, and the evidence binds the claims."""
    try:
        parsed = parse_claims(claims)
    except FormatError as exc:
        raise VerificationError("ratls-extension", str(exc)) from exc
    _check_claims(parsed, spki, nonce)
    return _verify_bound(
        FORM_STANDARD, evidence, report_data_for_claims(claims), now=now, policy=policy, roots=roots,
        collateral=collateral, vcek=vcek, cert_chain=cert_chain,
    )


def verify_certificate(
    cert: x509.Certificate | bytes,
    *,
    now: datetime,
    policy: Policy | None = None,
    roots: TrustedRoots | None = None,
    nonce: bytes | None = None,
    collateral: str | bytes | None = None,
    vcek: bytes | None = None,
    cert_chain: bytes | None = None,
) -> Claims:
    """Verify an RA-TLS certificate (DER, PEM or parsed) at `now`: its self-signature and validity, the binding
    of its evidence to its key (and to `nonce` when given: only the standard form can carry one), then the
    evidence itself with `policy` (whose report_data is replaced by the value the binding requires).

    Raises VerificationError only; `check` names the failure (module docstring)."""
    if now.tzinfo is None:
        raise VerificationError("time", "`now` must be timezone-aware")
    if not isinstance(cert, x509.Certificate):
        try:
            cert = load_cert(bytes(cert), "certificate")
        except Exception as exc:
            raise VerificationError("ratls-certificate", f"not a certificate ({exc})") from None
    try:
        cert.verify_directly_issued_by(cert)
    except Exception as exc:  # InvalidSignature, ValueError (issuer != subject), TypeError (key type)
        raise VerificationError("ratls-certificate", f"the self-signature does not verify ({exc!r})") from None
    check_validity(cert, now, "ratls-certificate")
    try:
        found = read_certificate(cert)
    except FormatError as exc:
        raise VerificationError("ratls-extension", str(exc)) from exc

    spki = spki_der(cert)
    if found.form == FORM_STANDARD:
        assert found.claims is not None
        _check_claims(found.claims, spki, nonce)
    else:
        if nonce is not None:
            raise VerificationError("ratls-nonce", f"the {found.form} form carries no nonce")
        if found.form != FORM_GRAMINE_LEGACY and _ec_point(cert) is None:
            raise VerificationError("ratls-binding", f"the {found.form} form binds an EC key; this key is not one")
    return _verify_bound(
        found.form, found.evidence, found.expected_report_data, now=now, policy=policy, roots=roots,
        collateral=collateral, vcek=vcek, cert_chain=cert_chain,
    )
