"""A simulated AMD SEV-SNP key infrastructure that emits real-format reports (spec/attestation.md §8).

`SimAmdPki.load_or_create(directory, product)` creates once, then reuses, in `directory/amd-<product>/`:
an ARK (self-signed RSA), an ASK and an ASVK signed by it, a VCEK (P-384, AMD extensions including the 64-byte
hwID; Turin: 8 bytes) signed by the ASK and a VLEK (P-384, cspId) signed by the ASVK. Every certificate signature
is RSASSA-PSS SHA-384, MGF1-SHA-384, salt 48, as AMD's. The RSA keys are 3072-bit by default (AMD uses 4096; the
simulation trades that for key-generation time). Private keys are written 0600.

Reports are signed like the firmware does: ECDSA P-384 SHA-384 over bytes 0..0x2A0, r and s little-endian in
72-byte fields. A verifier accepts them only with `pki.roots()`; the pinned AMD roots refuse them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from attestation.formats.snp import (
    GUID_ARK,
    GUID_ASK,
    GUID_VCEK,
    GUID_VLEK,
    OID_BL_SPL,
    OID_CSP_ID,
    OID_FMC_SPL,
    OID_HWID,
    OID_PRODUCT_NAME,
    OID_SNP_SPL,
    OID_SPL_4,
    OID_SPL_5,
    OID_SPL_6,
    OID_SPL_7,
    OID_STRUCT_VERSION,
    OID_TEE_SPL,
    OID_UCODE_SPL,
    REPORT_SIZE,
    SIGNED_SIZE,
    SIGNING_KEY_VCEK,
    SIGNING_KEY_VLEK,
    CertTable,
    Cpuid,
    GuestPolicy,
    PlatformInfo,
    SignerInfo,
    SnpReport,
    TcbVersion,
    der_ia5,
    der_integer,
    is_turin_layout,
    serialise_report,
)
from attestation.roots import AmdRoots, TrustedRoots
from attestation.verify.amd import amd_extensions

__all__ = ["SimAmdPki"]

PSS_SHA384 = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
POLICY_DEBUG = 1 << 19

_PRODUCTS = {
    # product: (VCEK productName, CPUID family, model, stepping, default TCB bytes)
    "Milan": ("Milan-B0", 0x19, 0x01, 0x01, bytes.fromhex("0300000000000873")),
    "Genoa": ("Genoa", 0x19, 0x11, 0x01, bytes.fromhex("0700000000000e48")),
    "Turin": ("Turin", 0x1A, 0x02, 0x00, bytes.fromhex("0101000300000009")),
}
_FILES = ("ark", "ask", "asvk", "vcek", "vlek")
CSP_ID = "CN=simulated-csp"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Advanced Micro Devices (simulated)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _amd_extensions(product: str, tcb: TcbVersion, *, hwid: bytes | None, csp_id: str | None) -> list[x509.Extension]:
    turin = is_turin_layout(product)
    product_name = _PRODUCTS[product][0] if hwid is not None else product
    values: list[tuple[str, bytes]] = [
        (OID_STRUCT_VERSION, der_integer(1 if turin else 0)),
        (OID_PRODUCT_NAME, der_ia5(product_name)),
    ]
    if turin:
        assert tcb.fmc is not None
        values.append((OID_FMC_SPL, der_integer(tcb.fmc)))
    values += [
        (OID_BL_SPL, der_integer(tcb.bootloader)),
        (OID_TEE_SPL, der_integer(tcb.tee)),
        (OID_SNP_SPL, der_integer(tcb.snp)),
    ]
    values += [(oid, der_integer(0)) for oid in ((OID_SPL_5, OID_SPL_6, OID_SPL_7) if turin else
                                                   (OID_SPL_4, OID_SPL_5, OID_SPL_6, OID_SPL_7))]
    values.append((OID_UCODE_SPL, der_integer(tcb.microcode)))
    if hwid is not None:
        values.append((OID_HWID, hwid))
    if csp_id is not None:
        values.append((OID_CSP_ID, der_ia5(csp_id)))
    return [
        x509.Extension(x509.ObjectIdentifier(oid), False, x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), v))
        for oid, v in values
    ]


def _certificate(
    subject: str,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    *,
    not_before: datetime,
    years: int,
    ca: bool,
    extra: list[x509.Extension] | None = None,
) -> x509.Certificate:
    name = _name(subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=365 * years))
    )
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=issuer is None, encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    for ext in extra or ():
        builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(issuer_key, hashes.SHA384(), rsa_padding=PSS_SHA384)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@dataclasses.dataclass(frozen=True)
class SimAmdPki:
    """A simulated AMD PKI for one product (see the module docstring)."""

    directory: Path
    product: str
    ark_key: rsa.RSAPrivateKey
    ark: x509.Certificate
    ask_key: rsa.RSAPrivateKey
    ask: x509.Certificate
    asvk_key: rsa.RSAPrivateKey
    asvk: x509.Certificate
    vcek_key: ec.EllipticCurvePrivateKey
    vcek: x509.Certificate
    vlek_key: ec.EllipticCurvePrivateKey
    vlek: x509.Certificate

    # -- creation and loading -----------------------------------------------------------------------------------

    @classmethod
    def load_or_create(
        cls,
        directory: Path,
        product: str = "Milan",
        *,
        not_before: datetime | None = None,
        tcb: TcbVersion | None = None,
        rsa_bits: int = 3072,
    ) -> SimAmdPki:
        """Load the PKI of `product` kept in `directory`, creating it the first time.

        not_before / tcb / rsa_bits only matter at creation: certificate validity start (default: now minus one
        day; ARK/ASK/ASVK 25 years, VCEK/VLEK 7 years), the TCB the VCEK/VLEK are issued for, the RSA key size.
        """
        product = next((p for p in _PRODUCTS if p.lower() == product.lower()), "")
        if not product:
            raise ValueError(f"unknown SEV-SNP product (one of {', '.join(_PRODUCTS)})")
        directory = Path(directory)
        final = directory / f"amd-{product.lower()}"
        if not (final / "vlek.pem").exists():
            directory.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".amd-tmp-", dir=directory))
            try:
                cls._create(tmp, product, not_before=not_before, tcb=tcb, rsa_bits=rsa_bits)
                try:
                    tmp.rename(final)
                except OSError:
                    if not (final / "vlek.pem").exists():  # another process won the race: use its PKI
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return cls._load(final, product)

    @staticmethod
    def _create(
        folder: Path, product: str, *, not_before: datetime | None, tcb: TcbVersion | None, rsa_bits: int
    ) -> None:
        start = (not_before or datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
        turin = is_turin_layout(product)
        tcb = tcb or TcbVersion.from_bytes(_PRODUCTS[product][4], turin=turin)
        if tcb.turin != turin:
            raise ValueError(f"the TCB layout does not match {product}")
        hwid = os.urandom(8 if turin else 64)

        ark_key = rsa.generate_private_key(65537, rsa_bits)
        ark = _certificate(f"ARK-{product}", ark_key.public_key(), None, ark_key, not_before=start, years=25, ca=True)
        ask_key = rsa.generate_private_key(65537, rsa_bits)
        ask = _certificate(f"SEV-{product}", ask_key.public_key(), ark, ark_key, not_before=start, years=25, ca=True)
        asvk_key = rsa.generate_private_key(65537, rsa_bits)
        asvk = _certificate(
            f"SEV-VLEK-{product}", asvk_key.public_key(), ark, ark_key, not_before=start, years=25, ca=True
        )
        vcek_key = ec.generate_private_key(ec.SECP384R1())
        vcek = _certificate(
            "SEV-VCEK", vcek_key.public_key(), ask, ask_key, not_before=start, years=7, ca=False,
            extra=_amd_extensions(product, tcb, hwid=hwid, csp_id=None),
        )
        vlek_key = ec.generate_private_key(ec.SECP384R1())
        vlek = _certificate(
            "SEV-VLEK", vlek_key.public_key(), asvk, asvk_key, not_before=start, years=7, ca=False,
            extra=_amd_extensions(product, tcb, hwid=None, csp_id=CSP_ID),
        )
        keys: dict[str, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = {
            "ark": ark_key, "ask": ask_key, "asvk": asvk_key, "vcek": vcek_key, "vlek": vlek_key,
        }
        certs = {"ark": ark, "ask": ask, "asvk": asvk, "vcek": vcek, "vlek": vlek}
        for name in _FILES:
            _write_private(folder / f"{name}.key", _key_pem(keys[name]))
            (folder / f"{name}.pem").write_bytes(_pem(certs[name]))

    @classmethod
    def _load(cls, folder: Path, product: str) -> SimAmdPki:
        loaded: dict[str, object] = {}
        for name in _FILES:
            loaded[f"{name}_key"] = serialization.load_pem_private_key((folder / f"{name}.key").read_bytes(), None)
            loaded[name] = x509.load_pem_x509_certificate((folder / f"{name}.pem").read_bytes())
        return cls(directory=folder, product=product, **loaded)  # type: ignore[arg-type]

    # -- what a verifier needs ------------------------------------------------------------------------------------

    def roots(self) -> TrustedRoots:
        return TrustedRoots(amd=((self.product, AmdRoots(ark=self.ark, ask=self.ask, asvk=self.asvk)),))

    def ark_pem(self) -> bytes:
        return _pem(self.ark)

    def vcek_der(self) -> bytes:
        return _der(self.vcek)

    def vlek_der(self) -> bytes:
        return _der(self.vlek)

    def cert_chain_pem(self, signer: str = "vcek") -> bytes:
        """The KDS-style chain: ASK (ASVK for signer="vlek") then ARK."""
        return _pem(self.asvk if signer == "vlek" else self.ask) + _pem(self.ark)

    @property
    def tcb(self) -> TcbVersion:
        """The TCB the VCEK was issued for (the default REPORTED_TCB)."""
        ext = amd_extensions(self.vcek)
        assert None not in (ext.bl_spl, ext.tee_spl, ext.snp_spl, ext.ucode_spl)
        return TcbVersion(
            bootloader=ext.bl_spl or 0, tee=ext.tee_spl or 0, snp=ext.snp_spl or 0, microcode=ext.ucode_spl or 0,
            fmc=ext.fmc_spl if is_turin_layout(self.product) else None,
        )

    @property
    def chip_id(self) -> bytes:
        """The 64-byte CHIP_ID (Turin: the 8-byte hwID then zeros)."""
        hwid = amd_extensions(self.vcek).hwid or b""
        return hwid.ljust(64, b"\0")

    # -- reports ----------------------------------------------------------------------------------------------------

    def report(
        self,
        report_data: bytes,
        measurement: bytes,
        *,
        host_data: bytes = bytes(32),
        version: int = 2,
        debug: bool = False,
        vmpl: int = 0,
        policy: int = 0x30000,
        tcb: TcbVersion | None = None,
        signer: str = "vcek",
        guest_svn: int = 0,
        family_id: bytes = bytes(16),
        image_id: bytes = bytes(16),
        mask_chip_id: bool = False,
    ) -> bytes:
        """A signed 0x4A0-byte report. report_data: at most 64 bytes (zero-padded); measurement: 48 bytes.

        version: 2, 3/4 (CPUID fields) or 5 (mitigation vectors). signer: "vcek" or "vlek".
        tcb: REPORTED_TCB (and current/committed/launch); default the TCB the VCEK was issued for.
        """
        if len(report_data) > 64:
            raise ValueError("report_data is at most 64 bytes")
        if len(measurement) != 48:
            raise ValueError("measurement is 48 bytes")
        if len(host_data) != 32:
            raise ValueError("host_data is 32 bytes")
        if version not in (2, 3, 4, 5):
            raise ValueError("version is 2, 3, 4 or 5")
        if signer not in ("vcek", "vlek"):
            raise ValueError('signer is "vcek" or "vlek"')
        tcb = tcb or self.tcb
        _, family, model, stepping, _ = _PRODUCTS[self.product]
        rep = SnpReport(
            version=version,
            guest_svn=guest_svn,
            policy=GuestPolicy(policy | POLICY_DEBUG if debug else policy & ~POLICY_DEBUG),
            family_id=family_id,
            image_id=image_id,
            vmpl=vmpl,
            signature_algo=1,
            current_tcb=tcb,
            platform_info=PlatformInfo(0x1),
            signer_info=SignerInfo((SIGNING_KEY_VLEK if signer == "vlek" else SIGNING_KEY_VCEK) << 2),
            reserved_04c=bytes(4),
            report_data=report_data.ljust(64, b"\0"),
            measurement=measurement,
            host_data=host_data,
            id_key_digest=bytes(48),
            author_key_digest=bytes(48),
            report_id=hashlib.sha256(b"sim-snp-report-id" + measurement + self.chip_id).digest(),
            report_id_ma=b"\xff" * 32,
            reported_tcb=tcb,
            cpuid=Cpuid(family, model, stepping) if version >= 3 else None,
            reserved_188=bytes(21 if version >= 3 else 24),
            chip_id=bytes(64) if mask_chip_id else self.chip_id,
            committed_tcb=tcb,
            current_build=21, current_minor=55, current_major=1, reserved_1eb=0,
            committed_build=21, committed_minor=55, committed_major=1, reserved_1ef=0,
            launch_tcb=tcb,
            launch_mit_vector=0 if version >= 5 else None,
            current_mit_vector=0 if version >= 5 else None,
            reserved_1f8=bytes(SIGNED_SIZE - (0x208 if version >= 5 else 0x1F8)),
            signature_r=bytes(72),
            signature_s=bytes(72),
            reserved_330=bytes(REPORT_SIZE - 0x330),
        )
        return self.sign_report(serialise_report(rep), signer=signer)

    def sign_report(self, report: bytes, *, signer: str = "vcek") -> bytes:
        """(Re)sign the first 0x2A0 bytes of `report` with the VCEK (or VLEK): tests use it to forge one field."""
        if len(report) != REPORT_SIZE:
            raise ValueError(f"a report is {REPORT_SIZE} bytes")
        key = self.vlek_key if signer == "vlek" else self.vcek_key
        r, s = decode_dss_signature(key.sign(report[:SIGNED_SIZE], ec.ECDSA(hashes.SHA384())))
        signature = r.to_bytes(72, "little") + s.to_bytes(72, "little")
        return report[:SIGNED_SIZE] + signature + report[SIGNED_SIZE + len(signature) :]

    def cert_table(self, signer: str = "vcek") -> CertTable:
        """VCEK (or VLEK), ASK (the ASVK for a VLEK, under the ASK GUID), ARK, as DER."""
        if signer == "vlek":
            leaf, intermediate = (GUID_VLEK, self.vlek), self.asvk
        else:
            leaf, intermediate = (GUID_VCEK, self.vcek), self.ask
        return CertTable.build([(leaf[0], _der(leaf[1])), (GUID_ASK, _der(intermediate)), (GUID_ARK, _der(self.ark))])

    def extended_report(
        self,
        report_data: bytes,
        measurement: bytes,
        *,
        host_data: bytes = bytes(32),
        version: int = 2,
        debug: bool = False,
        vmpl: int = 0,
        policy: int = 0x30000,
        tcb: TcbVersion | None = None,
        signer: str = "vcek",
        guest_svn: int = 0,
        family_id: bytes = bytes(16),
        image_id: bytes = bytes(16),
        mask_chip_id: bool = False,
    ) -> bytes:
        """report || certificate table, as SNP_GET_EXT_REPORT returns them (same arguments as `report`)."""
        report = self.report(
            report_data, measurement, host_data=host_data, version=version, debug=debug, vmpl=vmpl, policy=policy,
            tcb=tcb, signer=signer, guest_svn=guest_svn, family_id=family_id, image_id=image_id,
            mask_chip_id=mask_chip_id,
        )
        return report + self.cert_table(signer).to_bytes()
