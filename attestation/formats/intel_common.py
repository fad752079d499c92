"""Pieces shared by the Intel quote formats (SGX v3, TDX v4/v5): header, SGX report body, certification data.

Every structure parses from a bounds-checked `Reader` and serialises back to the same bytes. Sizes are checked when
a dataclass is built, so a hand-made structure that could not round-trip fails early with `FormatError(field)`
instead of producing a quote of the wrong layout. Layouts: spec/attestation.md §1.2-§1.4 and §2.3.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import struct
from functools import lru_cache
from typing import ClassVar

from attestation.errors import FormatError
from attestation.formats.reader import Reader

HEADER_SIZE = 48
ENCLAVE_REPORT_SIZE = 384
ECDSA_P256_SIGNATURE_SIZE = 64  # raw r || s, big-endian
ECDSA_P256_KEY_SIZE = 64  # raw x || y, big-endian, no 0x04 prefix

ATT_KEY_TYPE_ECDSA_P256 = 2
TEE_TYPE_SGX = 0x00000000
TEE_TYPE_TDX = 0x00000081
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")

# Certification data types (sgx_ql_cert_key_type_t).
CERT_PPID_CLEARTEXT = 1
CERT_PPID_RSA2048_ENCRYPTED = 2
CERT_PPID_RSA3072_ENCRYPTED = 3
CERT_PCK_CLEARTEXT = 4
CERT_PCK_CERT_CHAIN = 5
CERT_QE_REPORT_CERTIFICATION_DATA = 6
CERT_PLATFORM_MANIFEST = 7

# SGX report attribute flags (byte 0 of ATTRIBUTES).
SGX_FLAG_DEBUG = 0x02


def check_size(field: str, value: bytes, size: int) -> None:
    """Fixed-size fields must have exactly their size, or serialisation would shift every later field."""
    if not isinstance(value, bytes | bytearray) or len(value) != size:
        got = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise FormatError(field, f"must be {size} bytes, got {got}")


def check_uint(field: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise FormatError(field, f"must be an unsigned {bits}-bit integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class QuoteHeader:
    """The 48-byte quote header (spec §1.2).

    Bytes 8..12 are QE SVN and PCE SVN in SGX v3 and reserved in TDX v4/v5; they are kept as two u16 either way so
    every header round-trips. (go-tdx-guest names the two halves in the opposite order; sgx_quote_3.h is followed.)
    """

    version: int
    att_key_type: int
    tee_type: int
    qe_svn: int
    pce_svn: int
    qe_vendor_id: bytes
    user_data: bytes

    def __post_init__(self) -> None:
        check_uint("header.version", self.version, 16)
        check_uint("header.att_key_type", self.att_key_type, 16)
        check_uint("header.tee_type", self.tee_type, 32)
        check_uint("header.qe_svn", self.qe_svn, 16)
        check_uint("header.pce_svn", self.pce_svn, 16)
        check_size("header.qe_vendor_id", self.qe_vendor_id, 16)
        check_size("header.user_data", self.user_data, 20)

    @classmethod
    def read(cls, r: Reader) -> QuoteHeader:
        return cls(
            version=r.u16("header.version"),
            att_key_type=r.u16("header.att_key_type"),
            tee_type=r.u32("header.tee_type"),
            qe_svn=r.u16("header.qe_svn"),
            pce_svn=r.u16("header.pce_svn"),
            qe_vendor_id=r.take(16, "header.qe_vendor_id"),
            user_data=r.take(20, "header.user_data"),
        )

    def serialize(self) -> bytes:
        return (
            struct.pack("<HHIHH", self.version, self.att_key_type, self.tee_type, self.qe_svn, self.pce_svn)
            + self.qe_vendor_id
            + self.user_data
        )

    @property
    def qe_id(self) -> bytes:
        """The QE ID Intel's QE writes in the first 16 bytes of user_data (zero in some cloud quotes)."""
        return self.user_data[:16]


@dataclasses.dataclass(frozen=True)
class EnclaveReportBody:
    """`sgx_report_body_t` (384 bytes, spec §1.3): the ISV enclave report of an SGX quote, and every QE report."""

    SIZE: ClassVar[int] = ENCLAVE_REPORT_SIZE
    BODY_TYPE: ClassVar[int] = 1  # v5 body type

    cpu_svn: bytes
    misc_select: int
    reserved1: bytes
    isv_ext_prod_id: bytes
    attributes: bytes
    mr_enclave: bytes
    reserved2: bytes
    mr_signer: bytes
    reserved3: bytes
    config_id: bytes
    isv_prod_id: int
    isv_svn: int
    config_svn: int
    reserved4: bytes
    isv_family_id: bytes
    report_data: bytes

    def __post_init__(self) -> None:
        for name, size in (
            ("cpu_svn", 16), ("reserved1", 12), ("isv_ext_prod_id", 16), ("attributes", 16), ("mr_enclave", 32),
            ("reserved2", 32), ("mr_signer", 32), ("reserved3", 32), ("config_id", 64), ("reserved4", 42),
            ("isv_family_id", 16), ("report_data", 64),
        ):
            check_size(f"report.{name}", getattr(self, name), size)
        check_uint("report.misc_select", self.misc_select, 32)
        for name in ("isv_prod_id", "isv_svn", "config_svn"):
            check_uint(f"report.{name}", getattr(self, name), 16)

    @classmethod
    def read(cls, r: Reader, prefix: str = "report") -> EnclaveReportBody:
        if r.remaining >= ENCLAVE_REPORT_SIZE:  # fast path: one unpack (the field-by-field path names the field)
            return cls(*_REPORT_STRUCT.unpack(r.take(ENCLAVE_REPORT_SIZE, prefix)))

        def t(n: int, name: str) -> bytes:
            return r.take(n, f"{prefix}.{name}")

        return cls(
            cpu_svn=t(16, "cpu_svn"),
            misc_select=r.u32(f"{prefix}.misc_select"),
            reserved1=t(12, "reserved1"),
            isv_ext_prod_id=t(16, "isv_ext_prod_id"),
            attributes=t(16, "attributes"),
            mr_enclave=t(32, "mr_enclave"),
            reserved2=t(32, "reserved2"),
            mr_signer=t(32, "mr_signer"),
            reserved3=t(32, "reserved3"),
            config_id=t(64, "config_id"),
            isv_prod_id=r.u16(f"{prefix}.isv_prod_id"),
            isv_svn=r.u16(f"{prefix}.isv_svn"),
            config_svn=r.u16(f"{prefix}.config_svn"),
            reserved4=t(42, "reserved4"),
            isv_family_id=t(16, "isv_family_id"),
            report_data=t(64, "report_data"),
        )

    @classmethod
    def parse(cls, data: bytes, prefix: str = "report") -> EnclaveReportBody:
        """Exactly 384 bytes (a QE report inside the signature data, or a body on its own)."""
        r = Reader(data)
        body = cls.read(r, prefix)
        if r.remaining:
            raise FormatError(prefix, f"{r.remaining} bytes after the 384-byte report")
        return body

    def serialize(self) -> bytes:
        return _REPORT_STRUCT.pack(*(getattr(self, f.name) for f in dataclasses.fields(self)))

    @property
    def debug(self) -> bool:
        return bool(self.attributes[0] & SGX_FLAG_DEBUG)

    @property
    def flags(self) -> int:
        return int.from_bytes(self.attributes[:8], "little")

    @property
    def xfrm(self) -> int:
        return int.from_bytes(self.attributes[8:], "little")


# sgx_report_body_t in field order (the dataclass fields follow it).
_REPORT_STRUCT = struct.Struct("<16sI12s16s16s32s32s32s32s64sHHH42s16s64s")  # 384 bytes


# --- certification data -------------------------------------------------------------------------------------------

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----\n"
_PEM_END = b"-----END CERTIFICATE-----\n"


def pem_encode(der: bytes) -> bytes:
    """The canonical PEM Intel's QE writes: 64-character base64 lines, `\\n` line ends, final newline."""
    b64 = base64.b64encode(der)
    lines = b"".join(b64[i : i + 64] + b"\n" for i in range(0, len(b64), 64))
    return _PEM_BEGIN + lines + _PEM_END


@lru_cache(maxsize=64)
def split_pem_chain(blob: bytes, field: str) -> tuple[bytes, ...]:
    """DER certificates of a canonical PEM bundle; anything else in the blob is a FormatError.

    Remembers recent answers (a pure function; one platform's chain recurs in every quote it makes).
    Strict on purpose: the bundle must re-encode to the very same bytes, so that a parsed quote serialises back
    byte for byte and no byte of the signed-over evidence can change without being noticed (PEM parsers in general
    skip text between blocks and tolerate other line widths). Every real quote sample is in this form.
    """
    ders: list[bytes] = []
    pos = 0
    while pos < len(blob):
        if not blob.startswith(_PEM_BEGIN, pos):
            raise FormatError(field, f"expected '-----BEGIN CERTIFICATE-----' at byte {pos}")
        end = blob.find(_PEM_END, pos)
        if end < 0:
            raise FormatError(field, f"certificate at byte {pos} has no '-----END CERTIFICATE-----' line")
        text = blob[pos + len(_PEM_BEGIN) : end]
        try:
            der = base64.b64decode(text.replace(b"\n", b""), validate=True)
        except (binascii.Error, ValueError):
            raise FormatError(field, f"certificate at byte {pos} is not valid base64") from None
        if not der or pem_encode(der) != blob[pos : end + len(_PEM_END)]:
            raise FormatError(field, f"certificate at byte {pos} is not canonical PEM (64-column base64, \\n)")
        ders.append(der)
        pos = end + len(_PEM_END)
    if not ders:
        raise FormatError(field, "no certificate")
    return tuple(ders)


@dataclasses.dataclass(frozen=True)
class PckCertChain:
    """Certification data type 5: the PEM PCK chain, leaf first (leaf, PCK Processor/Platform CA, root).

    `certificates` are DER. Intel's QE ends the blob with one NUL byte (`nul_terminated`); some quotes do not.
    """

    TYPE: ClassVar[int] = CERT_PCK_CERT_CHAIN

    certificates: tuple[bytes, ...]
    nul_terminated: bool = True

    @property
    def cert_type(self) -> int:
        return self.TYPE

    @classmethod
    def parse_body(cls, body: bytes, field: str) -> PckCertChain:
        nul = body.endswith(b"\x00")
        return cls(split_pem_chain(body[:-1] if nul else body, field), nul)

    def pem(self) -> bytes:
        """The PEM bundle without the NUL terminator."""
        return b"".join(pem_encode(der) for der in self.certificates)

    def body(self) -> bytes:
        return self.pem() + (b"\x00" if self.nul_terminated else b"")


@dataclasses.dataclass(frozen=True)
class OpaqueCertificationData:
    """Certification data of a type this package does not interpret (PPID forms, platform manifest, ...)."""

    cert_type: int
    data: bytes

    def __post_init__(self) -> None:
        check_uint("certification_data.type", self.cert_type, 16)

    def body(self) -> bytes:
        return self.data


@dataclasses.dataclass(frozen=True)
class QeReportCertificationData:
    """Certification data type 6 (TDX v4/v5): the QE report, its PCK signature, the QE auth data and the inner
    certification data (type 5 in every real quote)."""

    TYPE: ClassVar[int] = CERT_QE_REPORT_CERTIFICATION_DATA

    qe_report: EnclaveReportBody
    qe_report_signature: bytes
    qe_auth_data: bytes
    certification_data: PckCertChain | OpaqueCertificationData

    def __post_init__(self) -> None:
        check_size("qe_report_signature", self.qe_report_signature, ECDSA_P256_SIGNATURE_SIZE)
        if len(self.qe_auth_data) > 0xFFFF:
            raise FormatError("qe_auth_data", "longer than 65535 bytes")

    @property
    def cert_type(self) -> int:
        return self.TYPE

    @classmethod
    def parse_body(cls, body: bytes, field: str) -> QeReportCertificationData:
        r = Reader(body)
        qe_report = EnclaveReportBody.read(r, f"{field}.qe_report")
        signature = r.take(ECDSA_P256_SIGNATURE_SIZE, f"{field}.qe_report_signature")
        auth = r.take(r.u16(f"{field}.qe_auth_data_size"), f"{field}.qe_auth_data")
        inner = read_certification_data(r, f"{field}.certification_data", nested=True)
        if r.remaining:
            raise FormatError(f"{field}.size", f"{r.remaining} bytes left after the inner certification data")
        if isinstance(inner, QeReportCertificationData):  # (read_certification_data refuses it when nested)
            raise FormatError(f"{field}.certification_data.type", "QE report certification data nested in itself")
        return cls(qe_report, signature, auth, inner)

    def body(self) -> bytes:
        return b"".join(
            (
                self.qe_report.serialize(),
                self.qe_report_signature,
                struct.pack("<H", len(self.qe_auth_data)),
                self.qe_auth_data,
                write_certification_data(self.certification_data),
            )
        )


CertificationData = PckCertChain | QeReportCertificationData | OpaqueCertificationData


def read_certification_data(r: Reader, field: str, nested: bool = False) -> CertificationData:
    """Type (u16), size (u32) and exactly `size` bytes of body, interpreted for types 5 and 6."""
    cert_type = r.u16(f"{field}.type")
    body = r.take(r.u32(f"{field}.size"), f"{field}.data")
    if cert_type == CERT_PCK_CERT_CHAIN:
        return PckCertChain.parse_body(body, f"{field}.pck_cert_chain")
    if cert_type == CERT_QE_REPORT_CERTIFICATION_DATA:
        if nested:
            raise FormatError(f"{field}.type", "QE report certification data nested in itself")
        return QeReportCertificationData.parse_body(body, f"{field}.qe_report_certification_data")
    return OpaqueCertificationData(cert_type, body)


def write_certification_data(cd: CertificationData) -> bytes:
    body = cd.body()
    return struct.pack("<HI", cd.cert_type, len(body)) + body
