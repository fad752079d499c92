"""A test-only Nitro PKI and enclave: documents in the real format, signed by keys of our own.

root (self-signed CA) -> intermediate (CA, pathlen 0) -> enclave leaf (digitalSignature), all P-384 and
ecdsa-with-SHA384 like AWS's. Verifying these needs `TrustedRoots(nitro=(pki.root,))`; the claims then say
`simulated=True`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from attestation.formats.nitro import NitroDocument, NitroPayload, sig_structure
from attestation.roots import TrustedRoots

_CA_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)
_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def make_cert(
    cn: str,
    key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey,
    issuer_cn: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    not_before: datetime,
    not_after: datetime,
    *,
    ca: bool,
    path_length: int | None = None,
    key_usage: x509.KeyUsage | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> x509.Certificate:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
        .public_key(public)
        .serial_number(x509.random_serial_number() | 1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
    )
    usage = key_usage if key_usage is not None else (_CA_USAGE if ca else _LEAF_USAGE)
    builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer_key, algorithm or hashes.SHA384())


def pcrs(pcr0: bytes | None = None, *, debug: bool = False) -> dict[int, bytes]:
    """16 SHA-384 PCRs: PCR0-2 zero when `debug`, else PCR0 = `pcr0` (or fixed bytes) and PCR1/2 non-zero;
    PCR3/4 non-zero as the parent instance sets them; the rest zero."""
    values = {i: bytes(48) for i in range(16)}
    if not debug:
        values[0] = pcr0 or bytes(range(1, 49))
        values[1] = b"\x11" * 48
        values[2] = b"\x22" * 48
    values[3] = b"\x33" * 48
    values[4] = b"\x44" * 48
    return values


@dataclasses.dataclass
class NitroTestPki:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    inter_key: ec.EllipticCurvePrivateKey
    inter: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate

    @classmethod
    def create(cls, start: datetime, *, leaf_hours: float = 3, prefix: str = "test") -> NitroTestPki:
        root_key = ec.generate_private_key(ec.SECP384R1())
        inter_key = ec.generate_private_key(ec.SECP384R1())
        leaf_key = ec.generate_private_key(ec.SECP384R1())
        root_cn, inter_cn = f"{prefix}.nitro-enclaves", f"{prefix}.zonal.nitro-enclaves"
        root = make_cert(root_cn, root_key, root_cn, root_key, start - timedelta(days=365),
                         start + timedelta(days=3650), ca=True)
        inter = make_cert(inter_cn, inter_key, root_cn, root_key, start - timedelta(days=1),
                          start + timedelta(days=5), ca=True, path_length=0)
        leaf = make_cert(f"i-0123.{prefix}-enc", leaf_key, inter_cn, inter_key, start,
                         start + timedelta(hours=leaf_hours), ca=False)
        return cls(root_key, root, inter_key, inter, leaf_key, leaf)

    @property
    def roots(self) -> TrustedRoots:
        return TrustedRoots(nitro=(self.root,))

    def payload(
        self,
        timestamp: datetime,
        *,
        pcr_values: dict[int, bytes] | None = None,
        user_data: bytes | None = None,
        nonce: bytes | None = None,
        public_key: bytes | None = None,
        certificate: x509.Certificate | None = None,
        cabundle: list[x509.Certificate] | None = None,
    ) -> NitroPayload:
        return NitroPayload(
            module_id="i-0123456789abcdef0-enc0123456789abcdef",
            digest="SHA384",
            timestamp=int(timestamp.timestamp() * 1000),
            pcrs=tuple((pcr_values if pcr_values is not None else pcrs()).items()),
            certificate=der(certificate or self.leaf),
            cabundle=tuple(der(c) for c in (cabundle if cabundle is not None else [self.root, self.inter])),
            public_key=public_key,
            user_data=user_data,
            nonce=nonce,
        )

    def sign(
        self, payload: NitroPayload, *, key: ec.EllipticCurvePrivateKey | None = None, tagged: bool = False
    ) -> bytes:
        protected = b"\xa1\x01\x38\x22"
        body = payload.to_bytes()
        der_sig = (key or self.leaf_key).sign(sig_structure(protected, body), ec.ECDSA(hashes.SHA384()))
        r, s = decode_dss_signature(der_sig)
        signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
        return NitroDocument(protected, {}, body, signature, payload, tagged).to_bytes()

    def document(self, timestamp: datetime, **fields: object) -> bytes:
        tagged = bool(fields.pop("tagged", False))
        return self.sign(self.payload(timestamp, **fields), tagged=tagged)  # type: ignore[arg-type]

    def enclave(self, timestamp: datetime, *, nonce: bytes | None = None) -> NitroEnclave:
        return NitroEnclave(self, timestamp, nonce)


@dataclasses.dataclass
class NitroEnclave:
    """A `quote_fn` for RA-TLS: the report data goes into user_data, as a Nitro RA-TLS enclave would do."""

    pki: NitroTestPki
    timestamp: datetime
    nonce: bytes | None = None
    calls: list[bytes] = dataclasses.field(default_factory=list)

    def __call__(self, report_data: bytes) -> bytes:
        self.calls.append(report_data)
        return self.pki.document(self.timestamp, user_data=report_data, nonce=self.nonce)
