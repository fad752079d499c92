"""Intel SGX DCAP ECDSA quote, version 3 (spec/attestation.md §1): parse and serialise, byte-exact.

Layout: header (48) | ISV enclave report body (384) | signature_data_len (u32) | signature data. Bytes after the
signature data (some quote producers pad) are ignored when parsing and not reproduced by `serialize()`:
`serialize(parse(x)) == x[:consumed]` where `consumed` is what `parse_with_length` returns.

`parse_quote` (also here) reads any Intel quote: v3 gives `SgxQuoteV3`, v4/v5 give `tdx.TdxQuote`.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import TYPE_CHECKING

from attestation.errors import FormatError
from attestation.formats.intel_common import (
    ECDSA_P256_KEY_SIZE,
    ECDSA_P256_SIGNATURE_SIZE,
    HEADER_SIZE,
    TEE_TYPE_SGX,
    CertificationData,
    EnclaveReportBody,
    QuoteHeader,
    check_size,
    read_certification_data,
    write_certification_data,
)
from attestation.formats.reader import Reader

if TYPE_CHECKING:
    from attestation.formats.tdx import TdxQuote

SGX_QUOTE_VERSION = 3
SIGNED_SIZE = HEADER_SIZE + EnclaveReportBody.SIZE  # 432


@dataclasses.dataclass(frozen=True)
class SgxSignatureData:
    """`sgx_ql_ecdsa_sig_data_t` (spec §1.4): ISV signature, attestation key, QE report + PCK signature, QE auth
    data, certification data (type 5, the PCK chain, in real quotes)."""

    quote_signature: bytes
    attestation_key: bytes
    qe_report: EnclaveReportBody
    qe_report_signature: bytes
    qe_auth_data: bytes
    certification_data: CertificationData

    def __post_init__(self) -> None:
        check_size("signature_data.quote_signature", self.quote_signature, ECDSA_P256_SIGNATURE_SIZE)
        check_size("signature_data.attestation_key", self.attestation_key, ECDSA_P256_KEY_SIZE)
        check_size("signature_data.qe_report_signature", self.qe_report_signature, ECDSA_P256_SIGNATURE_SIZE)
        if len(self.qe_auth_data) > 0xFFFF:
            raise FormatError("signature_data.qe_auth_data", "longer than 65535 bytes")

    @classmethod
    def parse(cls, data: bytes) -> SgxSignatureData:
        """Exactly the `signature_data_len` bytes: a size that disagrees with the content is a FormatError."""
        r = Reader(data)
        sig = r.take(ECDSA_P256_SIGNATURE_SIZE, "signature_data.quote_signature")
        key = r.take(ECDSA_P256_KEY_SIZE, "signature_data.attestation_key")
        qe_report = EnclaveReportBody.read(r, "signature_data.qe_report")
        qe_sig = r.take(ECDSA_P256_SIGNATURE_SIZE, "signature_data.qe_report_signature")
        auth = r.take(r.u16("signature_data.qe_auth_data_size"), "signature_data.qe_auth_data")
        cert = read_certification_data(r, "signature_data.certification_data")
        if r.remaining:
            raise FormatError("signature_data_len", f"{r.remaining} bytes left after the certification data")
        return cls(sig, key, qe_report, qe_sig, auth, cert)

    def serialize(self) -> bytes:
        return b"".join(
            (
                self.quote_signature,
                self.attestation_key,
                self.qe_report.serialize(),
                self.qe_report_signature,
                struct.pack("<H", len(self.qe_auth_data)),
                self.qe_auth_data,
                write_certification_data(self.certification_data),
            )
        )


@dataclasses.dataclass(frozen=True)
class SgxQuoteV3:
    header: QuoteHeader
    body: EnclaveReportBody
    signature_data: SgxSignatureData

    def __post_init__(self) -> None:
        if self.header.version != SGX_QUOTE_VERSION:
            raise FormatError("header.version", f"an SGX quote v3 has version 3, not {self.header.version}")
        if self.header.tee_type != TEE_TYPE_SGX:
            raise FormatError("header.tee_type", f"an SGX quote v3 has TEE type 0, not {self.header.tee_type:#x}")

    @classmethod
    def parse_with_length(cls, data: bytes) -> tuple[SgxQuoteV3, int]:
        """The quote and the number of bytes it spans (anything after is trailing padding, ignored)."""
        r = Reader(bytes(data))
        header = QuoteHeader.read(r)
        if header.version != SGX_QUOTE_VERSION:
            raise FormatError("header.version", f"an SGX quote v3 has version 3, not {header.version}")
        body = EnclaveReportBody.read(r, "body")
        sig_len = r.u32("signature_data_len")
        sig = SgxSignatureData.parse(r.take(sig_len, "signature_data"))
        return cls(header, body, sig), r.pos

    @classmethod
    def parse(cls, data: bytes) -> SgxQuoteV3:
        return cls.parse_with_length(data)[0]

    def signed_bytes(self) -> bytes:
        """What the attestation key signs: header || body (432 bytes)."""
        return self.header.serialize() + self.body.serialize()

    def serialize(self) -> bytes:
        sig = self.signature_data.serialize()
        return self.signed_bytes() + struct.pack("<I", len(sig)) + sig

    @property
    def tee(self) -> str:
        return "sgx"


def parse_quote_with_length(data: bytes) -> tuple[SgxQuoteV3 | TdxQuote, int]:
    """Any Intel DCAP quote (v3 SGX, v4/v5 TDX or v5 SGX) and the number of bytes it spans."""
    from attestation.formats.tdx import TdxQuote

    r = Reader(bytes(data))
    version = r.u16("header.version")
    if version == SGX_QUOTE_VERSION:
        return SgxQuoteV3.parse_with_length(data)
    if version in (4, 5):
        return TdxQuote.parse_with_length(data)
    raise FormatError("header.version", f"quote version {version} is not 3, 4 or 5")


def parse_quote(data: bytes) -> SgxQuoteV3 | TdxQuote:
    """Any Intel DCAP quote; trailing bytes after the signature data are ignored."""
    return parse_quote_with_length(data)[0]
