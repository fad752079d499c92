"""Intel TDX quote, versions 4 and 5 (spec/attestation.md §2): parse and serialise, byte-exact.

v4: header (48) | TD report 1.0 (584) | signature_data_len (u32) | signature data.
v5: header (48) | body_type (u16) | body_size (u32) | body | signature_data_len (u32) | signature data, where the body
is an SGX enclave report (type 1, 384 bytes), a TD report 1.0 (type 2, 584) or a TD report 1.5 (type 3, 648: TD report
1.0 plus TEE_TCB_SVN2 and MRSERVICETD).

The signature data is the attestation-key signature, the attestation key and certification data of type 6 (QE report
certification data, wrapping the type-5 PCK chain). As for SGX, bytes after the signature data are ignored when
parsing and not reproduced by `serialize()`.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import ClassVar

from attestation.errors import FormatError
from attestation.formats.intel_common import (
    ECDSA_P256_KEY_SIZE,
    ECDSA_P256_SIGNATURE_SIZE,
    TEE_TYPE_SGX,
    TEE_TYPE_TDX,
    CertificationData,
    EnclaveReportBody,
    QuoteHeader,
    check_size,
    read_certification_data,
    write_certification_data,
)
from attestation.formats.reader import Reader
from attestation.formats.sgx import SgxQuoteV3, parse_quote, parse_quote_with_length

__all__ = [
    "TD_ATTR_DEBUG",
    "TD_ATTR_SEPT_VE_DISABLE",
    "TdReport10",
    "TdReport15",
    "TdxQuote",
    "TdxSignatureData",
    "parse_quote",
    "parse_quote_with_length",
]

TD_ATTR_DEBUG = 1 << 0  # TUD.DEBUG
TD_ATTR_RESERVED_TUD = 0xFE  # bits 1-7, reserved in the TD-under-debug group
TD_ATTR_SEPT_VE_DISABLE = 1 << 28
TD_ATTR_PKS = 1 << 30
TD_ATTR_KL = 1 << 31
TD_ATTR_PERFMON = 1 << 63

_TD10_FIELDS = (
    ("tee_tcb_svn", 16),
    ("mr_seam", 48),
    ("mr_signer_seam", 48),
    ("seam_attributes", 8),
    ("td_attributes", 8),
    ("xfam", 8),
    ("mr_td", 48),
    ("mr_config_id", 48),
    ("mr_owner", 48),
    ("mr_owner_config", 48),
)
_TD10_STRUCT = struct.Struct("<" + "".join(f"{size}s" for _, size in _TD10_FIELDS) + "48s" * 4 + "64s")  # 584 bytes


@dataclasses.dataclass(frozen=True)
class TdReport10:
    """TD quote body, TD report 1.0 (584 bytes, spec §2.2). Attribute fields are kept as their 8 raw bytes."""

    SIZE: ClassVar[int] = 584
    BODY_TYPE: ClassVar[int] = 2

    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes

    def __post_init__(self) -> None:
        for name, size in _TD10_FIELDS:
            check_size(f"body.{name}", getattr(self, name), size)
        if not isinstance(self.rtmrs, tuple) or len(self.rtmrs) != 4:
            raise FormatError("body.rtmrs", "must be a tuple of the 4 RTMRs")
        for i, rtmr in enumerate(self.rtmrs):
            check_size(f"body.rtmr{i}", rtmr, 48)
        check_size("body.report_data", self.report_data, 64)

    @classmethod
    def _read_fields(cls, r: Reader) -> dict[str, object]:
        if r.remaining >= TdReport10.SIZE:  # fast path: one unpack (the field-by-field path names the field)
            values = _TD10_STRUCT.unpack(r.take(TdReport10.SIZE, "body"))
            fields = dict(zip([name for name, _ in _TD10_FIELDS], values[:10], strict=True))
            fields["rtmrs"] = values[10:14]
            fields["report_data"] = values[14]
            return fields
        fields = {name: r.take(size, f"body.{name}") for name, size in _TD10_FIELDS}
        fields["rtmrs"] = tuple(r.take(48, f"body.rtmr{i}") for i in range(4))
        fields["report_data"] = r.take(64, "body.report_data")
        return fields

    @classmethod
    def read(cls, r: Reader) -> TdReport10:
        return cls(**cls._read_fields(r))  # type: ignore[arg-type]

    def serialize(self) -> bytes:
        return b"".join([getattr(self, name) for name, _ in _TD10_FIELDS] + list(self.rtmrs) + [self.report_data])

    @property
    def td_attributes_value(self) -> int:
        return int.from_bytes(self.td_attributes, "little")

    @property
    def debug(self) -> bool:
        return bool(self.td_attributes_value & TD_ATTR_DEBUG)

    @property
    def tdx_module_svn(self) -> int:
        return self.tee_tcb_svn[0]

    @property
    def tdx_module_major_version(self) -> int:
        """Picks the `TDX_%02X` module identity of the TCB info (spec §2.2)."""
        return self.tee_tcb_svn[1]


@dataclasses.dataclass(frozen=True)
class TdReport15(TdReport10):
    """TD report 1.5 (v5 body type 3, 648 bytes): TD report 1.0 followed by TEE_TCB_SVN2 and MRSERVICETD."""

    SIZE: ClassVar[int] = 648
    BODY_TYPE: ClassVar[int] = 3

    tee_tcb_svn2: bytes = bytes(16)
    mr_servicetd: bytes = bytes(48)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_size("body.tee_tcb_svn2", self.tee_tcb_svn2, 16)
        check_size("body.mr_servicetd", self.mr_servicetd, 48)

    @classmethod
    def read(cls, r: Reader) -> TdReport15:
        fields = cls._read_fields(r)
        fields["tee_tcb_svn2"] = r.take(16, "body.tee_tcb_svn2")
        fields["mr_servicetd"] = r.take(48, "body.mr_servicetd")
        return cls(**fields)  # type: ignore[arg-type]

    def serialize(self) -> bytes:
        return super().serialize() + self.tee_tcb_svn2 + self.mr_servicetd


TdxBody = TdReport10 | TdReport15 | EnclaveReportBody
_BODY_CLASSES: dict[int, type[TdReport10] | type[EnclaveReportBody]] = {
    EnclaveReportBody.BODY_TYPE: EnclaveReportBody,
    TdReport10.BODY_TYPE: TdReport10,
    TdReport15.BODY_TYPE: TdReport15,
}


@dataclasses.dataclass(frozen=True)
class TdxSignatureData:
    """Signature data of quote v4/v5: attestation-key signature, attestation key, certification data (type 6)."""

    quote_signature: bytes
    attestation_key: bytes
    certification_data: CertificationData

    def __post_init__(self) -> None:
        check_size("signature_data.quote_signature", self.quote_signature, ECDSA_P256_SIGNATURE_SIZE)
        check_size("signature_data.attestation_key", self.attestation_key, ECDSA_P256_KEY_SIZE)

    @classmethod
    def parse(cls, data: bytes) -> TdxSignatureData:
        r = Reader(data)
        sig = r.take(ECDSA_P256_SIGNATURE_SIZE, "signature_data.quote_signature")
        key = r.take(ECDSA_P256_KEY_SIZE, "signature_data.attestation_key")
        cert = read_certification_data(r, "signature_data.certification_data")
        if r.remaining:
            raise FormatError("signature_data_len", f"{r.remaining} bytes left after the certification data")
        return cls(sig, key, cert)

    def serialize(self) -> bytes:
        return self.quote_signature + self.attestation_key + write_certification_data(self.certification_data)


@dataclasses.dataclass(frozen=True)
class TdxQuote:
    """Quote v4 or v5. `tee` is "tdx" for a TD body (TEE type 0x81) and "sgx" for a v5 SGX body (TEE type 0)."""

    header: QuoteHeader
    body: TdxBody
    signature_data: TdxSignatureData

    def __post_init__(self) -> None:
        version, tee_type = self.header.version, self.header.tee_type
        if version not in (4, 5):
            raise FormatError("header.version", f"a v4/v5 quote has version 4 or 5, not {version}")
        if tee_type not in (TEE_TYPE_TDX, TEE_TYPE_SGX) or (version == 4 and tee_type != TEE_TYPE_TDX):
            raise FormatError("header.tee_type", f"TEE type {tee_type:#x} is not valid in a v{version} quote")
        is_td = isinstance(self.body, TdReport10)
        if version == 4 and type(self.body) is not TdReport10:
            raise FormatError("body", "a v4 quote carries a TD report 1.0")
        if is_td != (tee_type == TEE_TYPE_TDX):
            raise FormatError("body_type", f"body type {self.body_type} does not fit TEE type {tee_type:#x}")

    @property
    def body_type(self) -> int:
        return self.body.BODY_TYPE

    @property
    def tee(self) -> str:
        return "tdx" if self.header.tee_type == TEE_TYPE_TDX else "sgx"

    @classmethod
    def parse_with_length(cls, data: bytes) -> tuple[TdxQuote, int]:
        """The quote and the number of bytes it spans (anything after is trailing padding, ignored)."""
        r = Reader(bytes(data))
        header = QuoteHeader.read(r)
        body: TdxBody
        if header.version == 4:
            body = TdReport10.read(r)
        elif header.version == 5:
            body_type = r.u16("body_type")
            body_size = r.u32("body_size")
            body_cls = _BODY_CLASSES.get(body_type)
            if body_cls is None:
                raise FormatError("body_type", f"unknown v5 body type {body_type}")
            if body_size != body_cls.SIZE:
                raise FormatError("body_size", f"body type {body_type} is {body_cls.SIZE} bytes, not {body_size}")
            body = EnclaveReportBody.read(r, "body") if body_cls is EnclaveReportBody else body_cls.read(r)  # type: ignore[call-arg]
        else:
            raise FormatError("header.version", f"a v4/v5 quote has version 4 or 5, not {header.version}")
        sig_len = r.u32("signature_data_len")
        sig = TdxSignatureData.parse(r.take(sig_len, "signature_data"))
        return cls(header, body, sig), r.pos

    @classmethod
    def parse(cls, data: bytes) -> TdxQuote:
        return cls.parse_with_length(data)[0]

    def signed_bytes(self) -> bytes:
        """Header || body for v4; header || body_type || body_size || body for v5."""
        body = self.body.serialize()
        if self.header.version == 5:
            return self.header.serialize() + struct.pack("<HI", self.body_type, len(body)) + body
        return self.header.serialize() + body

    def serialize(self) -> bytes:
        sig = self.signature_data.serialize()
        return self.signed_bytes() + struct.pack("<I", len(sig)) + sig


IntelQuote = SgxQuoteV3 | TdxQuote
