"""AMD SEV-SNP attestation report (versions 2, 3/4 and 5), the extended-report certificate table, and the
AMD X.509 extensions of a VCEK/VLEK certificate (spec/attestation.md §3).

Byte-exact both ways: `parse_report(data).to_bytes() == data` for every accepted input, reserved and MBZ
fields included (they are kept, not checked: the verifier decides which of them must be zero).

Evidence framing used by this package (`parse_evidence`): a bare report is exactly 0x4A0 bytes; an *extended
report* is the report immediately followed by the certificate table exactly as SNP_GET_EXT_REPORT writes it into
its certificate buffer (or as configfs-tsm returns it in `auxblob`): 24-byte entries {GUID, offset u32, length
u32} ended by an all-zero entry, then the certificates; each offset counts from the start of the table (so from
byte 0x4A0 of the evidence). Trailing padding after the certificates (the buffer is page-sized) is kept.

TCB_VERSION decoding depends on the processor generation: Milan/Genoa use the legacy layout (byte 0
boot loader, 1 TEE, 6 SNP, 7 microcode), Turin and later put FMC in byte 0 (1 boot loader, 2 TEE, 3 SNP,
7 microcode). Reports v3+ carry the CPUID family/model, from which the product is derived; a v2 report does not,
so its caller passes the product (e.g. from the VCEK's productName) or gets the legacy layout.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable

from attestation.errors import FormatError
from attestation.formats.reader import Reader

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0  # the signature covers report[0:0x2A0]
SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1
SUPPORTED_VERSIONS = (2, 3, 4, 5)

LEGACY_PRODUCTS = ("Milan", "Genoa")
TURIN_PRODUCTS = ("Turin",)

# Extended-report certificate table GUIDs (RFC 4122 byte order).
GUID_VCEK = uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd")
GUID_VLEK = uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1")
GUID_ASK = uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782")
GUID_ARK = uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae")
GUID_NAMES = {GUID_VCEK: "VCEK", GUID_VLEK: "VLEK", GUID_ASK: "ASK", GUID_ARK: "ARK"}
CERT_TABLE_ENTRY_SIZE = 24

# Signer info SIGNING_KEY values.
SIGNING_KEY_VCEK = 0
SIGNING_KEY_VLEK = 1
SIGNING_KEY_NONE = 7


def product_from_cpuid(family: int, model: int) -> str | None:
    """The SNP product (KDS name) of a CPUID family/model as reported in a v3+ report, or None if unknown.

    Family 19h: models 00h-0Fh Milan, 10h-1Fh Genoa, A0h-AFh Bergamo/Siena (Genoa certificates);
    family 1Ah: models 00h-1Fh Turin.
    """
    if family == 0x19:
        if model <= 0x0F:
            return "Milan"
        if 0x10 <= model <= 0x1F or 0xA0 <= model <= 0xAF:
            return "Genoa"
    if family == 0x1A and model <= 0x1F:
        return "Turin"
    return None


def normalise_product(name: str) -> str:
    """'Milan-B0' -> 'Milan' (the VCEK productName carries the stepping; roots are per product)."""
    return name.split("-", 1)[0].strip()


def is_turin_layout(product: str | None) -> bool:
    """True for the products whose TCB_VERSION has an FMC byte (Turin and later)."""
    return product is not None and normalise_product(product).lower() not in {p.lower() for p in LEGACY_PRODUCTS}


# ---------------------------------------------------------------------------------------------------------------
# Typed sub-fields


@dataclasses.dataclass(frozen=True)
class TcbVersion:
    """One 8-byte TCB_VERSION. `fmc` is None for the legacy (Milan/Genoa) layout, an int for Turin and later.

    reserved: legacy bytes 2..5 (4 bytes), Turin bytes 4..6 (3 bytes), kept for exact serialisation.
    """

    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None = None
    reserved: bytes | None = None

    @property
    def turin(self) -> bool:
        return self.fmc is not None

    @classmethod
    def from_bytes(cls, raw: bytes, *, turin: bool, field: str = "tcb") -> TcbVersion:
        if len(raw) != 8:
            raise FormatError(field, f"a TCB_VERSION is 8 bytes, not {len(raw)}")
        if turin:
            return cls(fmc=raw[0], bootloader=raw[1], tee=raw[2], snp=raw[3], microcode=raw[7], reserved=raw[4:7])
        return cls(bootloader=raw[0], tee=raw[1], snp=raw[6], microcode=raw[7], reserved=raw[2:6])

    def to_bytes(self) -> bytes:
        for name in ("bootloader", "tee", "snp", "microcode"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise FormatError(f"tcb.{name}", "must fit in one byte")
        if self.turin:
            assert self.fmc is not None
            if not 0 <= self.fmc <= 0xFF:
                raise FormatError("tcb.fmc", "must fit in one byte")
            reserved = bytes(3) if self.reserved is None else self.reserved
            if len(reserved) != 3:
                raise FormatError("tcb.reserved", "the Turin layout has 3 reserved bytes")
            return bytes((self.fmc, self.bootloader, self.tee, self.snp)) + reserved + bytes((self.microcode,))
        reserved = bytes(4) if self.reserved is None else self.reserved
        if len(reserved) != 4:
            raise FormatError("tcb.reserved", "the legacy layout has 4 reserved bytes")
        return bytes((self.bootloader, self.tee)) + reserved + bytes((self.snp, self.microcode))

    def components(self) -> tuple[tuple[str, int], ...]:
        """(name, value) in a stable order; 'fmc' only for the Turin layout."""
        out = [("bootloader", self.bootloader), ("tee", self.tee), ("snp", self.snp), ("microcode", self.microcode)]
        if self.fmc is not None:
            out.insert(0, ("fmc", self.fmc))
        return tuple(out)


@dataclasses.dataclass(frozen=True)
class GuestPolicy:
    """The 64-bit guest POLICY (spec §3.3)."""

    value: int

    def _bit(self, n: int) -> bool:
        return bool(self.value >> n & 1)

    @property
    def abi_minor(self) -> int:
        return self.value & 0xFF

    @property
    def abi_major(self) -> int:
        return self.value >> 8 & 0xFF

    @property
    def smt(self) -> bool:
        return self._bit(16)

    @property
    def reserved_must_be_one(self) -> bool:
        return self._bit(17)

    @property
    def migrate_ma(self) -> bool:
        return self._bit(18)

    @property
    def debug(self) -> bool:
        return self._bit(19)

    @property
    def single_socket(self) -> bool:
        return self._bit(20)

    @property
    def cxl_allow(self) -> bool:
        return self._bit(21)

    @property
    def mem_aes_256_xts(self) -> bool:
        return self._bit(22)

    @property
    def rapl_dis(self) -> bool:
        return self._bit(23)

    @property
    def ciphertext_hiding_dram(self) -> bool:
        return self._bit(24)

    @property
    def page_swap_disable(self) -> bool:
        return self._bit(25)

    @property
    def mbz(self) -> int:
        """Bits 26..63 (must be zero)."""
        return self.value >> 26


POLICY_DEBUG = 1 << 19


@dataclasses.dataclass(frozen=True)
class PlatformInfo:
    value: int

    @property
    def smt_en(self) -> bool:
        return bool(self.value & 1)

    @property
    def tsme_en(self) -> bool:
        return bool(self.value >> 1 & 1)

    @property
    def ecc_en(self) -> bool:
        return bool(self.value >> 2 & 1)

    @property
    def rapl_dis(self) -> bool:
        return bool(self.value >> 3 & 1)

    @property
    def ciphertext_hiding_en(self) -> bool:
        return bool(self.value >> 4 & 1)

    @property
    def alias_check_complete(self) -> bool:
        return bool(self.value >> 5 & 1)


@dataclasses.dataclass(frozen=True)
class SignerInfo:
    """The 32-bit signer info at 0x48: AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY (0 VCEK, 1 VLEK, 7 none)."""

    value: int

    @property
    def author_key_en(self) -> bool:
        return bool(self.value & 1)

    @property
    def mask_chip_key(self) -> bool:
        return bool(self.value >> 1 & 1)

    @property
    def signing_key(self) -> int:
        return self.value >> 2 & 0x7

    @property
    def signing_key_name(self) -> str:
        return {SIGNING_KEY_VCEK: "vcek", SIGNING_KEY_VLEK: "vlek", SIGNING_KEY_NONE: "none"}.get(
            self.signing_key, f"reserved({self.signing_key})"
        )

    @property
    def mbz(self) -> int:
        return self.value >> 5


@dataclasses.dataclass(frozen=True)
class Cpuid:
    """CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP (report v3+)."""

    family: int
    model: int
    stepping: int

    @property
    def product(self) -> str | None:
        return product_from_cpuid(self.family, self.model)


# ---------------------------------------------------------------------------------------------------------------
# The report


@dataclasses.dataclass(frozen=True)
class SnpReport:
    """An SEV-SNP ATTESTATION_REPORT, field by field.

    `cpuid` is None for v2 (its three bytes then belong to `reserved_188`, 24 bytes; 21 bytes for v3+).
    The mitigation vectors are None before v5 (`reserved_1f8` is then 168 bytes; 152 bytes for v5).
    `signature_r` / `signature_s` are the raw 72-byte little-endian fields.
    """

    version: int
    guest_svn: int
    policy: GuestPolicy
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: TcbVersion
    platform_info: PlatformInfo
    signer_info: SignerInfo
    reserved_04c: bytes
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: TcbVersion
    cpuid: Cpuid | None
    reserved_188: bytes
    chip_id: bytes
    committed_tcb: TcbVersion
    current_build: int
    current_minor: int
    current_major: int
    reserved_1eb: int
    committed_build: int
    committed_minor: int
    committed_major: int
    reserved_1ef: int
    launch_tcb: TcbVersion
    launch_mit_vector: int | None
    current_mit_vector: int | None
    reserved_1f8: bytes
    signature_r: bytes
    signature_s: bytes
    reserved_330: bytes

    @property
    def product(self) -> str | None:
        """The product named by the CPUID fields (v3+ only), or None."""
        return self.cpuid.product if self.cpuid is not None else None

    @property
    def turin_layout(self) -> bool:
        return self.reported_tcb.turin

    @property
    def r(self) -> int:
        return int.from_bytes(self.signature_r, "little")

    @property
    def s(self) -> int:
        return int.from_bytes(self.signature_s, "little")

    def signed_bytes(self) -> bytes:
        return self.to_bytes()[:SIGNED_SIZE]

    def to_bytes(self) -> bytes:
        return serialise_report(self)

    def with_product(self, product: str | None) -> SnpReport:
        """The same bytes with the TCB fields decoded for `product`."""
        return parse_report(self.to_bytes(), product=product)


def _generation_is_turin(version: int, cpuid_bytes: bytes, product: str | None) -> bool:
    if product is not None:
        return is_turin_layout(product)
    if version >= 3:
        cpu_product = product_from_cpuid(cpuid_bytes[0], cpuid_bytes[1])
        if cpu_product is not None:
            return is_turin_layout(cpu_product)
    return False


def parse_report(data: bytes, *, product: str | None = None) -> SnpReport:
    """Parse exactly one 0x4A0-byte report (FormatError naming the field otherwise).

    product: decode the TCB fields for this product (e.g. from the VCEK); default: from CPUID (v3+), else the
    Milan/Genoa layout.
    """
    if len(data) != REPORT_SIZE:
        if len(data) < REPORT_SIZE:
            Reader(data).take(REPORT_SIZE, "report")  # raises, naming the size
        raise FormatError("report", f"a report is {REPORT_SIZE} bytes, not {len(data)} (use parse_evidence)")
    r = Reader(bytes(data))
    version = r.u32("version")
    if version not in SUPPORTED_VERSIONS:
        raise FormatError("version", f"unsupported report version {version} (2, 3, 4 or 5)")
    turin = _generation_is_turin(version, data[0x188:0x18B], product)

    def tcb(field: str) -> TcbVersion:
        return TcbVersion.from_bytes(r.take(8, field), turin=turin, field=field)

    guest_svn = r.u32("guest_svn")
    policy = GuestPolicy(r.u64("policy"))
    family_id = r.take(16, "family_id")
    image_id = r.take(16, "image_id")
    vmpl = r.u32("vmpl")
    signature_algo = r.u32("signature_algo")
    current_tcb = tcb("current_tcb")
    platform_info = PlatformInfo(r.u64("platform_info"))
    signer_info = SignerInfo(r.u32("signer_info"))
    reserved_04c = r.take(4, "reserved_04c")
    report_data = r.take(64, "report_data")
    measurement = r.take(48, "measurement")
    host_data = r.take(32, "host_data")
    id_key_digest = r.take(48, "id_key_digest")
    author_key_digest = r.take(48, "author_key_digest")
    report_id = r.take(32, "report_id")
    report_id_ma = r.take(32, "report_id_ma")
    reported_tcb = tcb("reported_tcb")
    cpuid: Cpuid | None = None
    if version >= 3:
        cpuid = Cpuid(r.u8("cpuid_fam_id"), r.u8("cpuid_mod_id"), r.u8("cpuid_step"))
        reserved_188 = r.take(0x1A0 - 0x18B, "reserved_18b")
    else:
        reserved_188 = r.take(0x1A0 - 0x188, "reserved_188")
    chip_id = r.take(64, "chip_id")
    committed_tcb = tcb("committed_tcb")
    current_build, current_minor, current_major, reserved_1eb = r.take(4, "current_version")
    committed_build, committed_minor, committed_major, reserved_1ef = r.take(4, "committed_version")
    launch_tcb = tcb("launch_tcb")
    launch_mit: int | None = None
    current_mit: int | None = None
    if version >= 5:
        launch_mit = r.u64("launch_mit_vector")
        current_mit = r.u64("current_mit_vector")
        reserved_1f8 = r.take(SIGNED_SIZE - 0x208, "reserved_208")
    else:
        reserved_1f8 = r.take(SIGNED_SIZE - 0x1F8, "reserved_1f8")
    signature_r = r.take(72, "signature_r")
    signature_s = r.take(72, "signature_s")
    reserved_330 = r.take(REPORT_SIZE - 0x330, "reserved_330")
    return SnpReport(
        version=version, guest_svn=guest_svn, policy=policy, family_id=family_id, image_id=image_id, vmpl=vmpl,
        signature_algo=signature_algo, current_tcb=current_tcb, platform_info=platform_info,
        signer_info=signer_info, reserved_04c=reserved_04c, report_data=report_data, measurement=measurement,
        host_data=host_data, id_key_digest=id_key_digest, author_key_digest=author_key_digest, report_id=report_id,
        report_id_ma=report_id_ma, reported_tcb=reported_tcb, cpuid=cpuid, reserved_188=reserved_188,
        chip_id=chip_id, committed_tcb=committed_tcb, current_build=current_build, current_minor=current_minor,
        current_major=current_major, reserved_1eb=reserved_1eb, committed_build=committed_build,
        committed_minor=committed_minor, committed_major=committed_major, reserved_1ef=reserved_1ef,
        launch_tcb=launch_tcb, launch_mit_vector=launch_mit, current_mit_vector=current_mit,
        reserved_1f8=reserved_1f8, signature_r=signature_r, signature_s=signature_s, reserved_330=reserved_330,
    )


def _fixed(value: bytes, size: int, field: str) -> bytes:
    if len(value) != size:
        raise FormatError(field, f"must be {size} bytes, not {len(value)}")
    return value


def _uint(value: int, size: int, field: str) -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise FormatError(field, f"does not fit in {size} bytes")
    return value.to_bytes(size, "little")


def serialise_report(rep: SnpReport) -> bytes:
    """The 0x4A0 bytes of `rep` (FormatError naming the field if a value does not fit its layout)."""
    if rep.version not in SUPPORTED_VERSIONS:
        raise FormatError("version", f"unsupported report version {rep.version}")
    tcbs = {rep.current_tcb.turin, rep.reported_tcb.turin, rep.committed_tcb.turin, rep.launch_tcb.turin}
    if len(tcbs) != 1:
        raise FormatError("reported_tcb", "every TCB field must use the same (legacy or Turin) layout")
    out = bytearray()
    out += _uint(rep.version, 4, "version")
    out += _uint(rep.guest_svn, 4, "guest_svn")
    out += _uint(rep.policy.value, 8, "policy")
    out += _fixed(rep.family_id, 16, "family_id")
    out += _fixed(rep.image_id, 16, "image_id")
    out += _uint(rep.vmpl, 4, "vmpl")
    out += _uint(rep.signature_algo, 4, "signature_algo")
    out += rep.current_tcb.to_bytes()
    out += _uint(rep.platform_info.value, 8, "platform_info")
    out += _uint(rep.signer_info.value, 4, "signer_info")
    out += _fixed(rep.reserved_04c, 4, "reserved_04c")
    out += _fixed(rep.report_data, 64, "report_data")
    out += _fixed(rep.measurement, 48, "measurement")
    out += _fixed(rep.host_data, 32, "host_data")
    out += _fixed(rep.id_key_digest, 48, "id_key_digest")
    out += _fixed(rep.author_key_digest, 48, "author_key_digest")
    out += _fixed(rep.report_id, 32, "report_id")
    out += _fixed(rep.report_id_ma, 32, "report_id_ma")
    out += rep.reported_tcb.to_bytes()
    if rep.version >= 3:
        if rep.cpuid is None:
            raise FormatError("cpuid", f"a v{rep.version} report carries CPUID fields")
        out += _uint(rep.cpuid.family, 1, "cpuid_fam_id")
        out += _uint(rep.cpuid.model, 1, "cpuid_mod_id")
        out += _uint(rep.cpuid.stepping, 1, "cpuid_step")
        out += _fixed(rep.reserved_188, 0x1A0 - 0x18B, "reserved_18b")
    else:
        if rep.cpuid is not None:
            raise FormatError("cpuid", "a v2 report has no CPUID fields")
        out += _fixed(rep.reserved_188, 0x1A0 - 0x188, "reserved_188")
    out += _fixed(rep.chip_id, 64, "chip_id")
    out += rep.committed_tcb.to_bytes()
    out += bytes(
        _uint(v, 1, name)[0]
        for v, name in (
            (rep.current_build, "current_build"), (rep.current_minor, "current_minor"),
            (rep.current_major, "current_major"), (rep.reserved_1eb, "reserved_1eb"),
            (rep.committed_build, "committed_build"), (rep.committed_minor, "committed_minor"),
            (rep.committed_major, "committed_major"), (rep.reserved_1ef, "reserved_1ef"),
        )
    )
    out += rep.launch_tcb.to_bytes()
    if rep.version >= 5:
        if rep.launch_mit_vector is None or rep.current_mit_vector is None:
            raise FormatError("launch_mit_vector", "a v5 report carries the mitigation vectors")
        out += _uint(rep.launch_mit_vector, 8, "launch_mit_vector")
        out += _uint(rep.current_mit_vector, 8, "current_mit_vector")
        out += _fixed(rep.reserved_1f8, SIGNED_SIZE - 0x208, "reserved_208")
    else:
        if rep.launch_mit_vector is not None or rep.current_mit_vector is not None:
            raise FormatError("launch_mit_vector", f"a v{rep.version} report has no mitigation vectors")
        out += _fixed(rep.reserved_1f8, SIGNED_SIZE - 0x1F8, "reserved_1f8")
    out += _fixed(rep.signature_r, 72, "signature_r")
    out += _fixed(rep.signature_s, 72, "signature_s")
    out += _fixed(rep.reserved_330, REPORT_SIZE - 0x330, "reserved_330")
    assert len(out) == REPORT_SIZE
    return bytes(out)


# ---------------------------------------------------------------------------------------------------------------
# Extended-report certificate table


@dataclasses.dataclass(frozen=True)
class CertTableEntry:
    guid: uuid.UUID
    offset: int  # from the start of the table
    length: int

    @property
    def name(self) -> str:
        return GUID_NAMES.get(self.guid, str(self.guid))


@dataclasses.dataclass(frozen=True)
class CertTable:
    """The SNP_GET_EXT_REPORT certificate table.

    entries: the non-terminating entries, in order. body: every byte after the all-zero terminating entry
    (the certificates and any padding), so that `to_bytes()` is exact.
    """

    entries: tuple[CertTableEntry, ...]
    body: bytes

    @property
    def header_size(self) -> int:
        return (len(self.entries) + 1) * CERT_TABLE_ENTRY_SIZE

    def get(self, guid: uuid.UUID) -> bytes | None:
        """The certificate (usually DER) stored under `guid`, or None."""
        for entry in self.entries:
            if entry.guid == guid:
                start = entry.offset - self.header_size
                return self.body[start : start + entry.length]
        return None

    def items(self) -> tuple[tuple[uuid.UUID, bytes], ...]:
        out = []
        for entry in self.entries:
            data = self.get(entry.guid)
            assert data is not None
            out.append((entry.guid, data))
        return tuple(out)

    def to_bytes(self) -> bytes:
        out = bytearray()
        for i, entry in enumerate(self.entries):
            if entry.guid.int == 0:
                raise FormatError(f"cert_table.entries[{i}].guid", "the zero GUID ends the table")
            out += entry.guid.bytes
            out += _uint(entry.offset, 4, f"cert_table.entries[{i}].offset")
            out += _uint(entry.length, 4, f"cert_table.entries[{i}].length")
        out += bytes(CERT_TABLE_ENTRY_SIZE)
        out += self.body
        return bytes(out)

    @classmethod
    def build(cls, certificates: Iterable[tuple[uuid.UUID, bytes]]) -> CertTable:
        """A table holding `certificates` in order, packed right after the header."""
        items = list(certificates)
        offset = (len(items) + 1) * CERT_TABLE_ENTRY_SIZE
        entries = []
        for guid, data in items:
            entries.append(CertTableEntry(guid, offset, len(data)))
            offset += len(data)
        return cls(tuple(entries), b"".join(data for _, data in items))


def parse_cert_table(data: bytes) -> CertTable:
    """Parse a certificate table (FormatError naming the entry if it is truncated or inconsistent)."""
    r = Reader(bytes(data))
    entries: list[CertTableEntry] = []
    while True:
        i = len(entries)
        raw = r.take(CERT_TABLE_ENTRY_SIZE, f"cert_table.entries[{i}]")
        guid = uuid.UUID(bytes=raw[:16])
        offset = int.from_bytes(raw[16:20], "little")
        length = int.from_bytes(raw[20:24], "little")
        if guid.int == 0:
            if offset or length:
                raise FormatError(f"cert_table.entries[{i}]", "the terminating entry (zero GUID) must be all zero")
            break
        entries.append(CertTableEntry(guid, offset, length))
    header = r.pos
    for i, entry in enumerate(entries):
        field = f"cert_table.entries[{i}]"
        if entry.length == 0:
            raise FormatError(field, f"{entry.name} entry of length 0")
        if entry.offset < header or entry.offset + entry.length > len(data):
            raise FormatError(
                field, f"{entry.name} at {entry.offset}+{entry.length} is outside the body ({header}..{len(data)})"
            )
        if any(other.guid == entry.guid for other in entries[:i]):
            raise FormatError(field, f"duplicate {entry.name} entry")
    return CertTable(tuple(entries), bytes(data[header:]))


def parse_evidence(data: bytes, *, product: str | None = None) -> tuple[SnpReport, CertTable | None]:
    """A bare report (0x4A0 bytes) or an extended report (report || certificate table)."""
    if len(data) < REPORT_SIZE:
        Reader(data).take(REPORT_SIZE, "report")
    report = parse_report(data[:REPORT_SIZE], product=product)
    table = parse_cert_table(data[REPORT_SIZE:]) if len(data) > REPORT_SIZE else None
    return report, table


def serialise_evidence(report: SnpReport | bytes, table: CertTable | None = None) -> bytes:
    raw = report if isinstance(report, bytes) else report.to_bytes()
    return raw + (table.to_bytes() if table is not None else b"")


# ---------------------------------------------------------------------------------------------------------------
# VCEK / VLEK certificate extensions (values are DER, except hwID which is raw bytes)

AMD_OID_PREFIX = "1.3.6.1.4.1.3704.1."
OID_STRUCT_VERSION = AMD_OID_PREFIX + "1"
OID_PRODUCT_NAME = AMD_OID_PREFIX + "2"
OID_BL_SPL = AMD_OID_PREFIX + "3.1"
OID_TEE_SPL = AMD_OID_PREFIX + "3.2"
OID_SNP_SPL = AMD_OID_PREFIX + "3.3"
OID_SPL_4 = AMD_OID_PREFIX + "3.4"
OID_SPL_5 = AMD_OID_PREFIX + "3.5"
OID_SPL_6 = AMD_OID_PREFIX + "3.6"
OID_SPL_7 = AMD_OID_PREFIX + "3.7"
OID_UCODE_SPL = AMD_OID_PREFIX + "3.8"
OID_FMC_SPL = AMD_OID_PREFIX + "3.9"
OID_HWID = AMD_OID_PREFIX + "4"
OID_CSP_ID = AMD_OID_PREFIX + "5"


def _der_header(data: bytes, tag: int, field: str) -> bytes:
    """The content of one DER TLV with `tag` that spans all of `data`."""
    if len(data) < 2 or data[0] != tag:
        raise FormatError(field, f"expected DER tag 0x{tag:02x}")
    first = data[1]
    if first < 0x80:
        length, start = first, 2
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or len(data) < 2 + n:
            raise FormatError(field, "bad DER length")
        length, start = int.from_bytes(data[2 : 2 + n], "big"), 2 + n
    if start + length != len(data):
        raise FormatError(field, f"DER length {length} does not match the {len(data) - start} bytes present")
    return data[start:]


def der_integer_value(data: bytes, field: str) -> int:
    content = _der_header(data, 0x02, field)
    if not content:
        raise FormatError(field, "empty INTEGER")
    value = int.from_bytes(content, "big", signed=True)
    if value < 0:
        raise FormatError(field, "negative INTEGER")
    return value


def der_integer(value: int) -> bytes:
    content = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    return _der_tlv(0x02, content)


def der_ia5_value(data: bytes, field: str) -> str:
    content = _der_header(data, 0x16, field)
    try:
        return content.decode("ascii")
    except UnicodeDecodeError:
        raise FormatError(field, "not an IA5String") from None


def der_ia5(value: str) -> bytes:
    return _der_tlv(0x16, value.encode("ascii"))


def _der_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


@dataclasses.dataclass(frozen=True)
class AmdCertExtensions:
    """The AMD extensions of a VCEK or VLEK certificate; a field is None when its extension is absent."""

    struct_version: int | None = None
    product_name: str | None = None
    bl_spl: int | None = None
    tee_spl: int | None = None
    snp_spl: int | None = None
    ucode_spl: int | None = None
    fmc_spl: int | None = None
    hwid: bytes | None = None
    csp_id: str | None = None
    reserved_spl: tuple[tuple[str, int], ...] = ()  # spl_4..spl_7 when present

    @property
    def product(self) -> str | None:
        return normalise_product(self.product_name) if self.product_name else None

    def spl_for(self, component: str) -> int | None:
        return {
            "bootloader": self.bl_spl, "tee": self.tee_spl, "snp": self.snp_spl,
            "microcode": self.ucode_spl, "fmc": self.fmc_spl,
        }[component]


def parse_amd_extensions(values: dict[str, bytes]) -> AmdCertExtensions:
    """Decode {dotted OID: extension value bytes} (only the AMD OIDs are looked at)."""

    def integer(oid: str, name: str) -> int | None:
        return der_integer_value(values[oid], f"vcek.{name}") if oid in values else None

    reserved = tuple(
        (name, der_integer_value(values[oid], f"vcek.{name}"))
        for oid, name in ((OID_SPL_4, "spl_4"), (OID_SPL_5, "spl_5"), (OID_SPL_6, "spl_6"), (OID_SPL_7, "spl_7"))
        if oid in values
    )
    return AmdCertExtensions(
        struct_version=integer(OID_STRUCT_VERSION, "structVersion"),
        product_name=der_ia5_value(values[OID_PRODUCT_NAME], "vcek.productName")
        if OID_PRODUCT_NAME in values else None,
        bl_spl=integer(OID_BL_SPL, "blSPL"),
        tee_spl=integer(OID_TEE_SPL, "teeSPL"),
        snp_spl=integer(OID_SNP_SPL, "snpSPL"),
        ucode_spl=integer(OID_UCODE_SPL, "ucodeSPL"),
        fmc_spl=integer(OID_FMC_SPL, "fmcSPL"),
        hwid=values.get(OID_HWID),
        csp_id=der_ia5_value(values[OID_CSP_ID], "vcek.cspId") if OID_CSP_ID in values else None,
        reserved_spl=reserved,
    )
