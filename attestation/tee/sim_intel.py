"""A simulated Intel DCAP key infrastructure and quoting enclave that emit real-format SGX v3 and TDX v4/v5 quotes
(spec/attestation.md §8, §9).

`SimIntelPki.load_or_create(directory)` creates once, then reuses, in `directory/intel/`:

- `root_ca.pem/.key`: a self-signed P-256 root ("Simulated Intel SGX Root CA"), keyCertSign + cRLSign, path length 1;
- `pck_ca.pem/.key`: "Intel SGX PCK Platform CA" signed by the root;
- `pck.pem/.key`: "Intel SGX PCK Certificate", the PCK leaf, with the SGX extension (OID 1.2.840.113741.1.13.1:
  PPID, TCB components + PCESVN + CPUSVN, PCE-ID, FMSPC, SGX type, platform instance ID, configuration);
- `tcb_signing.pem/.key`: "Intel SGX TCB Signing" signed by the root;
- `root_ca_crl.der` (by the root) and `pck_crl.der` (by the PCK CA), both empty;
- `collateral_sgx.json` / `collateral_tdx.json`: QuoteCollateralV3 JSON as in the dcap-qvl samples, with TCB Info
  v3 (SGX; TDX with `tdxModule` and a `TDX_01` module identity) and QE Identity v2 (QE; TD_QE) signed r||s by the
  TCB Signing key;
- `qe_attestation.key`: the simulated quoting enclave's attestation key; `platform.json`: the platform values.

The names of the intermediate, leaf and TCB Signing certificates are Intel's (verifiers check them); the
organisation says "Simulated". Certificates are valid 20 years and collateral and CRLs 10 years from `not_before`
(default: now minus one day), so the files serve for the life of a test machine. Private keys are written 0600.

Quotes are accepted by `attestation.verify` only with `pki.roots()`; the pinned Intel root refuses them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import struct
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from attestation.formats.intel_common import (
    ATT_KEY_TYPE_ECDSA_P256,
    INTEL_QE_VENDOR_ID,
    TEE_TYPE_SGX,
    TEE_TYPE_TDX,
    EnclaveReportBody,
    PckCertChain,
    QeReportCertificationData,
    QuoteHeader,
)
from attestation.formats.sgx import SgxQuoteV3, SgxSignatureData
from attestation.formats.tdx import (
    TD_ATTR_DEBUG,
    TD_ATTR_SEPT_VE_DISABLE,
    TdReport10,
    TdReport15,
    TdxQuote,
    TdxSignatureData,
)
from attestation.roots import TrustedRoots
from attestation.verify.intel_collateral import SGX_EXTENSION_OID, QuoteCollateral

__all__ = ["SimIntelPki"]

_SUBDIR = "intel"
_COMPLETE = "collateral_tdx.json"  # written last: its presence means the PKI is complete
_ORG = "Simulated Intel Corporation (testing only)"

# Platform values (stored in platform.json at creation).
FMSPC = bytes.fromhex("00906ED50000")
PCE_ID = bytes(2)
PCE_SVN = 13
TCB_COMPONENTS = (11, 11, 2, 2, 255, 1, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0)
QE_ISV_SVN = {"sgx": 8, "tdx": 4}
QE_PROD_ID = {"sgx": 1, "tdx": 2}
QE_MRSIGNER = hashlib.sha256(b"simulated Intel quoting enclave signer").digest()
QE_MRENCLAVE = {k: hashlib.sha256(f"simulated Intel {k} quoting enclave".encode()).digest() for k in ("sgx", "tdx")}
QE_ATTRIBUTES = bytes.fromhex("1500000000000000e700000000000000")  # INITTED | MODE64BIT | PROVISIONKEY, XFRM e7
TEE_TCB_SVN = bytes([3, 1, 2]) + bytes(13)  # module SVN 3, module major version 1 (-> TDX_01), late microcode 2
MR_SEAM = hashlib.sha384(b"simulated Intel TDX module").digest()
XFAM = bytes.fromhex("e702060000000000")
QE_AUTH_DATA = bytes(range(32))
SGX_FLAGS = 0x05  # INITTED | MODE64BIT
SGX_XFRM = 0xE7
EVALUATION_DATA_NUMBER = 17

CERT_YEARS = 20
COLLATERAL_YEARS = 10


# --- small DER encoder for the SGX extension ---------------------------------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _der(0x06, bytes(out))


def _der_int(value: int, tag: int = 0x02) -> bytes:
    return _der(tag, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _pair(oid: str, value: bytes) -> bytes:
    return _der(0x30, _der_oid(oid) + value)


def sgx_extension_value(
    *, ppid: bytes, components: tuple[int, ...], pce_svn: int, cpu_svn: bytes, pce_id: bytes, fmspc: bytes,
    sgx_type: int, platform_instance_id: bytes | None = None,
) -> bytes:
    """The DER value of the PCK certificate SGX extension (spec §1.6)."""
    base = SGX_EXTENSION_OID
    tcb = b"".join(_pair(f"{base}.2.{i + 1}", _der_int(svn)) for i, svn in enumerate(components))
    tcb += _pair(f"{base}.2.17", _der_int(pce_svn)) + _pair(f"{base}.2.18", _der(0x04, cpu_svn))
    items = [
        _pair(f"{base}.1", _der(0x04, ppid)),
        _pair(f"{base}.2", _der(0x30, tcb)),
        _pair(f"{base}.3", _der(0x04, pce_id)),
        _pair(f"{base}.4", _der(0x04, fmspc)),
        _pair(f"{base}.5", _der_int(sgx_type, tag=0x0A)),
    ]
    if platform_instance_id is not None:
        items.append(_pair(f"{base}.6", _der(0x04, platform_instance_id)))
        config = b"".join(_pair(f"{base}.7.{i}", _der(0x01, b"\x00")) for i in (1, 2, 3))
        items.append(_pair(f"{base}.7", _der(0x30, config)))
    return _der(0x30, b"".join(items))


# --- certificates, keys, signatures ------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _certificate(
    name: str, key: ec.EllipticCurvePublicKey, issuer: x509.Certificate | None, issuer_key: ec.EllipticCurvePrivateKey,
    *, start: datetime, ca: bool, path_length: int | None = None, extra: tuple[x509.ExtensionType, ...] = (),
) -> x509.Certificate:
    subject = _name(name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca, content_commitment=not ca, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    for ext in extra:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _crl(issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey, start: datetime) -> bytes:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(start)
        .next_update(start + timedelta(days=365 * COLLATERAL_YEARS))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return crl.public_bytes(serialization.Encoding.DER)


def sign_raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256/SHA-256 as Intel writes it: r || s, 32 bytes each, big-endian."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _date(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _components(svns: tuple[int, ...] | bytes) -> list[dict[str, int]]:
    return [{"svn": svn} for svn in svns]


def _tcb_info(kind: str, platform: dict[str, Any], start: datetime) -> dict[str, Any]:
    """TCB Info v3: the platform's own level (UpToDate) first, then an older OutOfDate one."""
    components = tuple(platform["tcb_components"])
    older = tuple(max(0, c - 1) for c in components)
    up: dict[str, Any] = {"sgxtcbcomponents": _components(components), "pcesvn": platform["pce_svn"]}
    old: dict[str, Any] = {"sgxtcbcomponents": _components(older), "pcesvn": platform["pce_svn"] - 1}
    info: dict[str, Any] = {
        "id": kind.upper(),
        "version": 3,
        "issueDate": _date(start),
        "nextUpdate": _date(start + timedelta(days=365 * COLLATERAL_YEARS)),
        "fmspc": platform["fmspc"].upper(),
        "pceId": platform["pce_id"].upper(),
        "tcbType": 0,
        "tcbEvaluationDataNumber": EVALUATION_DATA_NUMBER,
    }
    if kind == "tdx":
        tee = bytes.fromhex(platform["tee_tcb_svn"])
        module = {"mrsigner": "00" * 48, "attributes": "00" * 8, "attributesMask": "FF" * 8}
        info["tdxModule"] = module
        info["tdxModuleIdentities"] = [
            {
                "id": f"TDX_{tee[1]:02X}",
                **module,
                "tcbLevels": [
                    {"tcb": {"isvsvn": tee[0]}, "tcbDate": _date(start), "tcbStatus": "UpToDate"},
                    {"tcb": {"isvsvn": 0}, "tcbDate": "2023-08-09T00:00:00Z", "tcbStatus": "OutOfDate"},
                ],
            }
        ]
        up["tdxtcbcomponents"] = _components(tee[:1] + b"\x00" + tee[2:])  # byte 1 is a version, Intel lists 0
        old["tdxtcbcomponents"] = _components(bytes(16))
    info["tcbLevels"] = [
        {"tcb": up, "tcbDate": _date(start), "tcbStatus": "UpToDate"},
        {"tcb": old, "tcbDate": "2023-02-15T00:00:00Z", "tcbStatus": "OutOfDate", "advisoryIDs": ["INTEL-SA-00000"]},
    ]
    return info


def _qe_identity(kind: str, start: datetime) -> dict[str, Any]:
    return {
        "id": "QE" if kind == "sgx" else "TD_QE",
        "version": 2,
        "issueDate": _date(start),
        "nextUpdate": _date(start + timedelta(days=365 * COLLATERAL_YEARS)),
        "tcbEvaluationDataNumber": EVALUATION_DATA_NUMBER,
        "miscselect": "00000000",
        "miscselectMask": "FFFFFFFF",
        "attributes": "11000000000000000000000000000000",
        "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": QE_MRSIGNER.hex().upper(),
        "isvprodid": QE_PROD_ID[kind],
        "tcbLevels": [
            {"tcb": {"isvsvn": QE_ISV_SVN[kind]}, "tcbDate": _date(start), "tcbStatus": "UpToDate"},
            {"tcb": {"isvsvn": 1}, "tcbDate": "2021-11-10T00:00:00Z", "tcbStatus": "OutOfDate",
             "advisoryIDs": ["INTEL-SA-00000"]},
        ],
    }


def _pad_report_data(report_data: bytes) -> bytes:
    if len(report_data) > 64:
        raise ValueError("report_data is at most 64 bytes")
    return report_data.ljust(64, b"\x00")


def _exact(name: str, value: bytes, size: int) -> bytes:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
    return value


# --- the PKI -----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SimIntelPki:
    """A simulated Intel PKI and quoting enclave (see the module docstring)."""

    directory: Path
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    pck_ca_key: ec.EllipticCurvePrivateKey
    pck_ca: x509.Certificate
    pck_key: ec.EllipticCurvePrivateKey
    pck: x509.Certificate
    tcb_signing_key: ec.EllipticCurvePrivateKey
    tcb_signing: x509.Certificate
    attestation_key: ec.EllipticCurvePrivateKey
    platform: dict[str, Any]

    # -- creation and loading -----------------------------------------------------------------------------------

    @classmethod
    def load_or_create(cls, directory: Path, *, not_before: datetime | None = None) -> SimIntelPki:
        """Load the PKI kept in `directory/intel/`, creating it the first time (`not_before` only matters then:
        the start of every validity window, default now minus one day). Concurrent creators are safe: each builds in
        a private temporary folder and the first rename wins."""
        directory = Path(directory)
        final = directory / _SUBDIR
        if not (final / _COMPLETE).exists():
            directory.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".intel-tmp-", dir=directory))
            try:
                cls._create(tmp, not_before)
                try:
                    tmp.rename(final)
                except OSError:
                    if not (final / _COMPLETE).exists():  # another process won the race: use its PKI
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return cls._load(final)

    @staticmethod
    def _create(folder: Path, not_before: datetime | None) -> None:
        start = (not_before or datetime.now(UTC) - timedelta(days=1)).astimezone(UTC).replace(microsecond=0)
        platform: dict[str, Any] = {
            "fmspc": FMSPC.hex(),
            "pce_id": PCE_ID.hex(),
            "pce_svn": PCE_SVN,
            "tcb_components": list(TCB_COMPONENTS),
            "cpu_svn": bytes(TCB_COMPONENTS).hex(),
            "tee_tcb_svn": TEE_TCB_SVN.hex(),
            "qe_id": os.urandom(16).hex(),
            "created": _date(start),
        }
        keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in
                ("root_ca", "pck_ca", "pck", "tcb_signing", "qe_attestation")}
        root = _certificate("Simulated Intel SGX Root CA", keys["root_ca"].public_key(), None, keys["root_ca"],
                            start=start, ca=True, path_length=1)
        pck_ca = _certificate("Intel SGX PCK Platform CA", keys["pck_ca"].public_key(), root, keys["root_ca"],
                              start=start, ca=True, path_length=0)
        extension = sgx_extension_value(
            ppid=os.urandom(16), components=TCB_COMPONENTS, pce_svn=PCE_SVN, cpu_svn=bytes(TCB_COMPONENTS),
            pce_id=PCE_ID, fmspc=FMSPC, sgx_type=1, platform_instance_id=os.urandom(16),
        )
        pck = _certificate(
            "Intel SGX PCK Certificate", keys["pck"].public_key(), pck_ca, keys["pck_ca"], start=start, ca=False,
            extra=(x509.UnrecognizedExtension(x509.ObjectIdentifier(SGX_EXTENSION_OID), extension),),
        )
        tcb_signing = _certificate("Intel SGX TCB Signing", keys["tcb_signing"].public_key(), root, keys["root_ca"],
                                   start=start, ca=False)
        certs = {"root_ca": root, "pck_ca": pck_ca, "pck": pck, "tcb_signing": tcb_signing}
        for name, key in keys.items():
            _write_private(folder / f"{name}.key", _key_pem(key))
        for name, cert in certs.items():
            (folder / f"{name}.pem").write_bytes(_pem(cert))
        root_crl = _crl(root, keys["root_ca"], start)
        pck_crl = _crl(pck_ca, keys["pck_ca"], start)
        (folder / "root_ca_crl.der").write_bytes(root_crl)
        (folder / "pck_crl.der").write_bytes(pck_crl)
        (folder / "platform.json").write_text(json.dumps(platform, indent=1) + "\n")
        tcb_chain = (_pem(tcb_signing) + _pem(root)).decode()
        for kind in ("sgx", "tdx"):
            tcb_info = json.dumps(_tcb_info(kind, platform, start), separators=(",", ":"))
            qe_identity = json.dumps(_qe_identity(kind, start), separators=(",", ":"))
            collateral = QuoteCollateral(
                pck_crl_issuer_chain=(_pem(pck_ca) + _pem(root)).decode(),
                root_ca_crl=root_crl,
                pck_crl=pck_crl,
                tcb_info_issuer_chain=tcb_chain,
                tcb_info=tcb_info,
                tcb_info_signature=sign_raw(keys["tcb_signing"], tcb_info.encode()),
                qe_identity_issuer_chain=tcb_chain,
                qe_identity=qe_identity,
                qe_identity_signature=sign_raw(keys["tcb_signing"], qe_identity.encode()),
            )
            (folder / f"collateral_{kind}.json").write_text(collateral.to_json())  # tdx last: marks completion

    @classmethod
    def _load(cls, folder: Path) -> SimIntelPki:
        def key(name: str) -> ec.EllipticCurvePrivateKey:
            loaded = serialization.load_pem_private_key((folder / f"{name}.key").read_bytes(), None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{name}.key is not an EC key")
            return loaded

        def cert(name: str) -> x509.Certificate:
            return x509.load_pem_x509_certificate((folder / f"{name}.pem").read_bytes())

        return cls(
            directory=folder,
            root_key=key("root_ca"),
            root=cert("root_ca"),
            pck_ca_key=key("pck_ca"),
            pck_ca=cert("pck_ca"),
            pck_key=key("pck"),
            pck=cert("pck"),
            tcb_signing_key=key("tcb_signing"),
            tcb_signing=cert("tcb_signing"),
            attestation_key=key("qe_attestation"),
            platform=json.loads((folder / "platform.json").read_text()),
        )

    # -- what a verifier needs ------------------------------------------------------------------------------------

    def root_pem(self) -> bytes:
        return _pem(self.root)

    def root_der(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.DER)

    def root_path(self) -> Path:
        return self.directory / "root_ca.pem"

    def roots(self) -> TrustedRoots:
        """Trust exactly this simulated root (claims from it say `simulated=True`)."""
        return TrustedRoots(intel=(self.root,))

    def collateral(self, kind: str) -> str:
        """QuoteCollateralV3 JSON for "sgx" or "tdx" quotes of this platform."""
        if kind not in ("sgx", "tdx"):
            raise ValueError("kind is 'sgx' or 'tdx'")
        return (self.directory / f"collateral_{kind}.json").read_text()

    def pck_chain(self) -> PckCertChain:
        """Certification data type 5, as Intel's QE writes it (PEM leaf, CA, root; NUL-terminated)."""
        der = serialization.Encoding.DER
        return PckCertChain(tuple(c.public_bytes(der) for c in (self.pck, self.pck_ca, self.root)), True)

    # -- quotes ---------------------------------------------------------------------------------------------------

    def _qe_report(self, kind: str) -> tuple[EnclaveReportBody, bytes]:
        """The QE report binding the attestation key, and its PCK signature."""
        ak = self._attestation_key_xy()
        report = EnclaveReportBody(
            cpu_svn=bytes.fromhex(self.platform["cpu_svn"]),
            misc_select=0,
            reserved1=bytes(12),
            isv_ext_prod_id=bytes(16),
            attributes=QE_ATTRIBUTES,
            mr_enclave=QE_MRENCLAVE[kind],
            reserved2=bytes(32),
            mr_signer=QE_MRSIGNER,
            reserved3=bytes(32),
            config_id=bytes(64),
            isv_prod_id=QE_PROD_ID[kind],
            isv_svn=QE_ISV_SVN[kind],
            config_svn=0,
            reserved4=bytes(42),
            isv_family_id=bytes(16),
            report_data=hashlib.sha256(ak + QE_AUTH_DATA).digest() + bytes(32),
        )
        return report, sign_raw(self.pck_key, report.serialize())

    def _attestation_key_xy(self) -> bytes:
        point = self.attestation_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return point[1:]

    def _header(self, version: int, tee_type: int, kind: str) -> QuoteHeader:
        sgx = tee_type == TEE_TYPE_SGX
        return QuoteHeader(
            version=version,
            att_key_type=ATT_KEY_TYPE_ECDSA_P256,
            tee_type=tee_type,
            qe_svn=QE_ISV_SVN[kind] if sgx else 0,
            pce_svn=self.platform["pce_svn"] if sgx else 0,
            qe_vendor_id=INTEL_QE_VENDOR_ID,
            user_data=bytes.fromhex(self.platform["qe_id"]) + bytes(4),
        )

    def sgx_quote(
        self,
        report_data: bytes,
        mrenclave: bytes,
        mrsigner: bytes,
        *,
        debug: bool = False,
        isv_svn: int = 0,
        isv_prod_id: int = 0,
        attributes: bytes | None = None,
        config_id: bytes = bytes(64),
    ) -> bytes:
        """An SGX DCAP quote v3 of an enclave (certification data type 5).

        attributes: the 16-byte ATTRIBUTES (default INITTED | MODE64BIT, XFRM 0xE7); `debug` sets the DEBUG flag.
        """
        attrs = bytearray(attributes if attributes is not None else struct.pack("<QQ", SGX_FLAGS, SGX_XFRM))
        _exact("attributes", bytes(attrs), 16)
        if debug:
            attrs[0] |= 0x02
        body = EnclaveReportBody(
            cpu_svn=bytes.fromhex(self.platform["cpu_svn"]),
            misc_select=0,
            reserved1=bytes(12),
            isv_ext_prod_id=bytes(16),
            attributes=bytes(attrs),
            mr_enclave=_exact("mrenclave", mrenclave, 32),
            reserved2=bytes(32),
            mr_signer=_exact("mrsigner", mrsigner, 32),
            reserved3=bytes(32),
            config_id=_exact("config_id", config_id, 64),
            isv_prod_id=isv_prod_id,
            isv_svn=isv_svn,
            config_svn=0,
            reserved4=bytes(42),
            isv_family_id=bytes(16),
            report_data=_pad_report_data(report_data),
        )
        header = self._header(3, TEE_TYPE_SGX, "sgx")
        qe_report, qe_sig = self._qe_report("sgx")
        signed = header.serialize() + body.serialize()
        sig = SgxSignatureData(
            quote_signature=sign_raw(self.attestation_key, signed),
            attestation_key=self._attestation_key_xy(),
            qe_report=qe_report,
            qe_report_signature=qe_sig,
            qe_auth_data=QE_AUTH_DATA,
            certification_data=self.pck_chain(),
        )
        return SgxQuoteV3(header, body, sig).serialize()

    def tdx_quote(
        self,
        report_data: bytes,
        mrtd: bytes,
        *,
        mrconfigid: bytes = bytes(48),
        rtmrs: tuple[bytes, bytes, bytes, bytes] = (bytes(48), bytes(48), bytes(48), bytes(48)),
        version: int = 4,
        debug: bool = False,
        body_type: int | None = None,
        td_attributes: int | None = None,
        mr_owner: bytes = bytes(48),
        mr_owner_config: bytes = bytes(48),
    ) -> bytes:
        """A TDX quote v4 (TD report 1.0) or v5 (body type 3, TD report 1.5, by default; or 2).

        td_attributes: the TDATTRIBUTES value (default SEPT_VE_DISABLE, plus DEBUG when `debug`).
        """
        if version not in (4, 5):
            raise ValueError("version is 4 or 5")
        body_type = body_type or (2 if version == 4 else 3)
        if body_type not in (2, 3) or (version == 4 and body_type != 2):
            raise ValueError("a v4 quote has body type 2; a v5 quote body type 2 or 3")
        attrs = td_attributes if td_attributes is not None else TD_ATTR_SEPT_VE_DISABLE
        if debug:
            attrs |= TD_ATTR_DEBUG
        if len(rtmrs) != 4:
            raise ValueError("rtmrs holds the 4 RTMRs")
        fields: dict[str, Any] = {
            "tee_tcb_svn": bytes.fromhex(self.platform["tee_tcb_svn"]),
            "mr_seam": MR_SEAM,
            "mr_signer_seam": bytes(48),
            "seam_attributes": bytes(8),
            "td_attributes": attrs.to_bytes(8, "little"),
            "xfam": XFAM,
            "mr_td": _exact("mrtd", mrtd, 48),
            "mr_config_id": _exact("mrconfigid", mrconfigid, 48),
            "mr_owner": _exact("mr_owner", mr_owner, 48),
            "mr_owner_config": _exact("mr_owner_config", mr_owner_config, 48),
            "rtmrs": tuple(_exact(f"rtmr{i}", r, 48) for i, r in enumerate(rtmrs)),
            "report_data": _pad_report_data(report_data),
        }
        body = TdReport15(**fields) if body_type == 3 else TdReport10(**fields)
        header = self._header(version, TEE_TYPE_TDX, "tdx")
        qe_report, qe_sig = self._qe_report("tdx")
        cert = QeReportCertificationData(qe_report, qe_sig, QE_AUTH_DATA, self.pck_chain())
        unsigned = TdxQuote(header, body, TdxSignatureData(bytes(64), self._attestation_key_xy(), cert))
        signature = sign_raw(self.attestation_key, unsigned.signed_bytes())
        return dataclasses.replace(
            unsigned, signature_data=dataclasses.replace(unsigned.signature_data, quote_signature=signature)
        ).serialize()
