"""Intel DCAP collateral: the QuoteCollateralV3 JSON, TCB Info v3, QE Identity v2, the PCK certificate SGX
extension, and TCB status merging (spec/attestation.md §1.5, §1.6, §1.8).

Only parsing and pure rules live here; signatures, chains and dates are checked in `intel.py`. Every malformed input
raises `VerificationError` with a check name ("collateral", "tcb-info", "qe-identity", "pck-extension"): collateral
is not evidence bytes, but a verifier fed bad collateral must still fail with a named check, never a KeyError.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.errors import VerificationError

# --- QuoteCollateralV3 --------------------------------------------------------------------------------------------

_HEX_FIELDS = ("root_ca_crl", "pck_crl", "tcb_info_signature", "qe_identity_signature")
_STR_FIELDS = ("pck_crl_issuer_chain", "tcb_info_issuer_chain", "tcb_info", "qe_identity_issuer_chain", "qe_identity")


@dataclasses.dataclass(frozen=True)
class QuoteCollateral:
    """dcap-qvl `QuoteCollateralV3`: PEM issuer chains, DER CRLs, the raw signed JSON strings and r||s signatures.

    `tcb_info` and `qe_identity` are kept as the exact strings Intel signed: re-serialising parsed JSON would change
    the bytes and break the signature.
    """

    pck_crl_issuer_chain: str
    root_ca_crl: bytes
    pck_crl: bytes
    tcb_info_issuer_chain: str
    tcb_info: str
    tcb_info_signature: bytes
    qe_identity_issuer_chain: str
    qe_identity: str
    qe_identity_signature: bytes
    pck_certificate_chain: str | None = None

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> QuoteCollateral:
        """The JSON form of the samples: byte fields as hex (a CRL may also be given as PEM)."""
        if isinstance(data, str | bytes):
            try:
                obj = json.loads(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise VerificationError("collateral", f"not JSON ({exc})") from None
        else:
            obj = data
        if not isinstance(obj, Mapping):
            raise VerificationError("collateral", "not a JSON object")
        values: dict[str, Any] = {}
        for name in _STR_FIELDS:
            value = obj.get(name)
            if not isinstance(value, str):
                raise VerificationError("collateral", f"{name} is missing or not a string")
            values[name] = value
        for name in _HEX_FIELDS:
            values[name] = _bytes_field(obj.get(name), name)
        chain = obj.get("pck_certificate_chain")
        values["pck_certificate_chain"] = chain if isinstance(chain, str) else None
        return cls(**values)

    def to_json(self) -> str:
        obj: dict[str, Any] = {
            "pck_crl_issuer_chain": self.pck_crl_issuer_chain,
            "root_ca_crl": self.root_ca_crl.hex(),
            "pck_crl": self.pck_crl.hex(),
            "tcb_info_issuer_chain": self.tcb_info_issuer_chain,
            "tcb_info": self.tcb_info,
            "tcb_info_signature": self.tcb_info_signature.hex(),
            "qe_identity_issuer_chain": self.qe_identity_issuer_chain,
            "qe_identity": self.qe_identity,
            "qe_identity_signature": self.qe_identity_signature.hex(),
        }
        if self.pck_certificate_chain is not None:
            obj["pck_certificate_chain"] = self.pck_certificate_chain
        return json.dumps(obj)


def _bytes_field(value: object, name: str) -> bytes:
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value)  # serde's default encoding of Vec<u8>
    if not isinstance(value, str):
        raise VerificationError("collateral", f"{name} is missing or not a hex string")
    if value.lstrip().startswith("-----BEGIN X509 CRL-----"):
        try:
            return x509.load_pem_x509_crl(value.encode()).public_bytes(Encoding.DER)
        except ValueError:
            raise VerificationError("collateral", f"{name} is not a PEM CRL") from None
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise VerificationError("collateral", f"{name} is not hex") from None


# --- small JSON helpers -------------------------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], check: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise VerificationError(check, f"field {key!r} is missing or of the wrong type")
    return value


def _hex(obj: Mapping[str, Any], key: str, size: int, check: str) -> bytes:
    try:
        value = bytes.fromhex(_get(obj, key, str, check))
    except ValueError:
        raise VerificationError(check, f"field {key!r} is not hex") from None
    if len(value) != size:
        raise VerificationError(check, f"field {key!r} must be {size} bytes, got {len(value)}")
    return value


def _date(obj: Mapping[str, Any], key: str, check: str) -> datetime:
    text = _get(obj, key, str, check)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise VerificationError(check, f"field {key!r} is not an ISO 8601 date: {text!r}") from None
    if value.tzinfo is None:
        raise VerificationError(check, f"field {key!r} has no time zone: {text!r}")
    return value


def _advisories(level: Mapping[str, Any], check: str) -> tuple[str, ...]:
    ids = level.get("advisoryIDs", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise VerificationError(check, "advisoryIDs is not a list of strings")
    return tuple(ids)


def _object(text: str, check: str) -> Mapping[str, Any]:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise VerificationError(check, f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise VerificationError(check, "not a JSON object")
    return obj


# --- TCB statuses -------------------------------------------------------------------------------------------------

UP_TO_DATE = "UpToDate"
SW_HARDENING_NEEDED = "SWHardeningNeeded"
CONFIGURATION_NEEDED = "ConfigurationNeeded"
CONFIGURATION_AND_SW_HARDENING_NEEDED = "ConfigurationAndSWHardeningNeeded"
OUT_OF_DATE = "OutOfDate"
OUT_OF_DATE_CONFIGURATION_NEEDED = "OutOfDateConfigurationNeeded"
REVOKED = "Revoked"
TCB_STATUSES = frozenset(
    {
        UP_TO_DATE, SW_HARDENING_NEEDED, CONFIGURATION_NEEDED, CONFIGURATION_AND_SW_HARDENING_NEEDED, OUT_OF_DATE,
        OUT_OF_DATE_CONFIGURATION_NEEDED, REVOKED,
    }
)


def _status(level: Mapping[str, Any], check: str) -> str:
    status = _get(level, "tcbStatus", str, check)
    if status not in TCB_STATUSES:
        raise VerificationError(check, f"unknown TCB status {status!r}")
    return status


def merge_statuses(*statuses: str) -> str:
    """One verdict from the platform, QE and TDX module statuses: the worst of them, keeping what each says.

    Revoked anywhere is Revoked. Otherwise out of date anywhere makes the result out of date, and configuration
    or software hardening needed anywhere is carried along (OutOfDate keeps only the configuration part, since
    Intel has no "OutOfDateSWHardeningNeeded" status).
    """
    if REVOKED in statuses:
        return REVOKED
    out_of_date = any(s.startswith("OutOfDate") for s in statuses)
    config = any("Configuration" in s for s in statuses)
    hardening = any("SWHardening" in s for s in statuses)
    if out_of_date:
        return OUT_OF_DATE_CONFIGURATION_NEEDED if config else OUT_OF_DATE
    if config:
        return CONFIGURATION_AND_SW_HARDENING_NEEDED if hardening else CONFIGURATION_NEEDED
    return SW_HARDENING_NEEDED if hardening else UP_TO_DATE


# --- TCB Info v3 --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TcbLevel:
    sgx_components: tuple[int, ...]  # 16 SVNs
    pce_svn: int
    tdx_components: tuple[int, ...] | None  # 16 SVNs, TDX only
    tcb_date: str
    status: str
    advisory_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class IsvTcbLevel:
    """A level of a QE identity or TDX module identity: one ISVSVN."""

    isv_svn: int
    tcb_date: str
    status: str
    advisory_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class TdxModuleIdentity:
    id: str  # "TDX_01", ... ; "" for the plain `tdxModule` object
    mrsigner: bytes  # 48 bytes
    attributes: bytes  # 8 bytes
    attributes_mask: bytes
    tcb_levels: tuple[IsvTcbLevel, ...] = ()


@dataclasses.dataclass(frozen=True)
class TcbInfo:
    id: str  # "SGX" | "TDX"
    version: int
    issue_date: datetime
    next_update: datetime
    fmspc: bytes
    pce_id: bytes
    tcb_type: int
    tcb_evaluation_data_number: int
    tcb_levels: tuple[TcbLevel, ...]
    tdx_module: TdxModuleIdentity | None = None
    tdx_module_identities: tuple[TdxModuleIdentity, ...] | None = None


def _components(tcb: Mapping[str, Any], key: str, check: str) -> tuple[int, ...]:
    items = _get(tcb, key, list, check)
    if len(items) != 16:
        raise VerificationError(check, f"{key} has {len(items)} entries, not 16")
    if not all(isinstance(item, dict) for item in items):
        raise VerificationError(check, f"{key} entries must be objects")
    return tuple(_get(item, "svn", int, check) for item in items)


# An enclave or TDX module identity level is one of these (the platform's other statuses do not apply to it).
ISV_TCB_STATUSES = frozenset({UP_TO_DATE, OUT_OF_DATE, REVOKED})


def _isv_levels(obj: Mapping[str, Any], check: str) -> tuple[IsvTcbLevel, ...]:
    levels = []
    for level in _get(obj, "tcbLevels", list, check):
        if not isinstance(level, dict):
            raise VerificationError(check, "a tcbLevels entry is not an object")
        tcb = _get(level, "tcb", dict, check)
        status = _status(level, check)
        if status not in ISV_TCB_STATUSES:
            raise VerificationError(check, f"TCB status {status!r} is not valid for an enclave or module identity")
        levels.append(
            IsvTcbLevel(
                isv_svn=_get(tcb, "isvsvn", int, check),
                tcb_date=_get(level, "tcbDate", str, check),
                status=status,
                advisory_ids=_advisories(level, check),
            )
        )
    return tuple(levels)


def _module(obj: Mapping[str, Any], check: str, with_levels: bool) -> TdxModuleIdentity:
    return TdxModuleIdentity(
        id=_get(obj, "id", str, check) if with_levels else "",
        mrsigner=_hex(obj, "mrsigner", 48, check),
        attributes=_hex(obj, "attributes", 8, check),
        attributes_mask=_hex(obj, "attributesMask", 8, check),
        tcb_levels=_isv_levels(obj, check) if with_levels else (),
    )


def parse_tcb_info(text: str) -> TcbInfo:
    """TCB Info version 3 (the only version Intel's v3/v4 PCS APIs serve for both SGX and TDX)."""
    check = "tcb-info"
    obj = _object(text, check)
    tcb_id = _get(obj, "id", str, check)
    version = _get(obj, "version", int, check)
    if tcb_id not in ("SGX", "TDX"):
        raise VerificationError(check, f"unknown TCB info id {tcb_id!r}")
    if version != 3:
        raise VerificationError(check, f"TCB info version {version} is not supported (only 3)")
    tdx = tcb_id == "TDX"
    levels = []
    for level in _get(obj, "tcbLevels", list, check):
        if not isinstance(level, dict):
            raise VerificationError(check, "a tcbLevels entry is not an object")
        tcb = _get(level, "tcb", dict, check)
        levels.append(
            TcbLevel(
                sgx_components=_components(tcb, "sgxtcbcomponents", check),
                pce_svn=_get(tcb, "pcesvn", int, check),
                tdx_components=_components(tcb, "tdxtcbcomponents", check) if tdx else None,
                tcb_date=_get(level, "tcbDate", str, check),
                status=_status(level, check),
                advisory_ids=_advisories(level, check),
            )
        )
    module = identities = None
    if tdx:
        module = _module(_get(obj, "tdxModule", dict, check), check, with_levels=False)
        if "tdxModuleIdentities" in obj:
            entries = _get(obj, "tdxModuleIdentities", list, check)
            if not all(isinstance(e, dict) for e in entries):
                raise VerificationError(check, "a tdxModuleIdentities entry is not an object")
            identities = tuple(_module(e, check, with_levels=True) for e in entries)
    return TcbInfo(
        id=tcb_id,
        version=version,
        issue_date=_date(obj, "issueDate", check),
        next_update=_date(obj, "nextUpdate", check),
        fmspc=_hex(obj, "fmspc", 6, check),
        pce_id=_hex(obj, "pceId", 2, check),
        tcb_type=_get(obj, "tcbType", int, check),
        tcb_evaluation_data_number=_get(obj, "tcbEvaluationDataNumber", int, check),
        tcb_levels=tuple(levels),
        tdx_module=module,
        tdx_module_identities=identities,
    )


# --- QE Identity v2 -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EnclaveIdentity:
    id: str  # "QE" | "TD_QE" (| "QVE")
    version: int
    issue_date: datetime
    next_update: datetime
    tcb_evaluation_data_number: int
    miscselect: int
    miscselect_mask: int
    attributes: bytes  # 16 bytes, in report byte order
    attributes_mask: bytes
    mrsigner: bytes
    isv_prod_id: int
    tcb_levels: tuple[IsvTcbLevel, ...]


def parse_enclave_identity(text: str) -> EnclaveIdentity:
    """QE Identity version 2. MISCSELECT is written as the hex of the 32-bit value (big-endian digits)."""
    check = "qe-identity"
    obj = _object(text, check)
    version = _get(obj, "version", int, check)
    if version != 2:
        raise VerificationError(check, f"enclave identity version {version} is not supported (only 2)")
    return EnclaveIdentity(
        id=_get(obj, "id", str, check),
        version=version,
        issue_date=_date(obj, "issueDate", check),
        next_update=_date(obj, "nextUpdate", check),
        tcb_evaluation_data_number=_get(obj, "tcbEvaluationDataNumber", int, check),
        miscselect=int.from_bytes(_hex(obj, "miscselect", 4, check), "big"),
        miscselect_mask=int.from_bytes(_hex(obj, "miscselectMask", 4, check), "big"),
        attributes=_hex(obj, "attributes", 16, check),
        attributes_mask=_hex(obj, "attributesMask", 16, check),
        mrsigner=_hex(obj, "mrsigner", 32, check),
        isv_prod_id=_get(obj, "isvprodid", int, check),
        tcb_levels=_isv_levels(obj, check),
    )


def masked_equal(value: bytes, mask: bytes, expected: bytes) -> bool:
    return len(value) == len(mask) == len(expected) and all(
        (v & m) == e for v, m, e in zip(value, mask, expected, strict=True)
    )


def first_isv_level(levels: Sequence[IsvTcbLevel], isv_svn: int) -> IsvTcbLevel | None:
    """Levels are listed newest first: the first one the SVN reaches applies."""
    return next((level for level in levels if level.isv_svn <= isv_svn), None)


# --- PCK certificate SGX extension (OID 1.2.840.113741.1.13.1) ----------------------------------------------------

SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"


@dataclasses.dataclass(frozen=True)
class PckExtension:
    ppid: bytes
    tcb_components: tuple[int, ...]  # 16 SVNs (.2.1 .. .2.16)
    pce_svn: int  # .2.17
    cpu_svn: bytes  # .2.18, 16 bytes
    pce_id: bytes  # 2 bytes
    fmspc: bytes  # 6 bytes
    sgx_type: int  # 0 Standard, 1 Scalable, 2 ScalableWithIntegrity
    platform_instance_id: bytes | None = None
    configuration: tuple[tuple[str, bool], ...] = ()


def _tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """One DER TLV at `pos`: (tag, value, next position). Definite lengths only (DER)."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("truncated DER value")
    return tag, data[pos : pos + length], pos + length


def _sequence(value: bytes) -> list[tuple[int, bytes]]:
    items, pos = [], 0
    while pos < len(value):
        tag, item, pos = _tlv(value, pos)
        items.append((tag, item))
    return items


def _oid(value: bytes) -> str:
    if not value:
        raise ValueError("empty OID")
    arcs, acc = [], 0
    for b in value:
        acc = (acc << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(acc)
            acc = 0
    if value[-1] & 0x80:
        raise ValueError("truncated OID")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def _int(tag: int, value: bytes) -> int:
    if tag not in (0x02, 0x0A) or not value:  # INTEGER or ENUMERATED
        raise ValueError("expected an INTEGER")
    return int.from_bytes(value, "big", signed=True)


def _octets(tag: int, value: bytes, size: int | None = None) -> bytes:
    if tag != 0x04 or (size is not None and len(value) != size):
        raise ValueError(f"expected an OCTET STRING of {size} bytes")
    return value


def _pairs(value: bytes) -> dict[str, tuple[int, bytes]]:
    """SEQUENCE OF SEQUENCE { OID, value } as a mapping OID -> (tag, value)."""
    out: dict[str, tuple[int, bytes]] = {}
    for tag, item in _sequence(value):
        if tag != 0x30:
            raise ValueError("expected SEQUENCE { OID, value }")
        inner = _sequence(item)
        if len(inner) != 2 or inner[0][0] != 0x06:
            raise ValueError("expected SEQUENCE { OID, value }")
        out[_oid(inner[0][1])] = inner[1]
    return out


def parse_pck_extension(cert: x509.Certificate) -> PckExtension:
    """The SGX extension of a PCK certificate (spec §1.6); a missing or malformed one is "pck-extension"."""
    check = "pck-extension"
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSION_OID)).value
    except x509.ExtensionNotFound:
        raise VerificationError(check, "the PCK certificate has no SGX extension") from None
    except ValueError as exc:
        raise VerificationError(check, f"the PCK certificate extensions are malformed ({exc})") from None
    raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
    base = SGX_EXTENSION_OID
    try:
        tag, value, end = _tlv(raw, 0)
        if tag != 0x30 or end != len(raw):
            raise ValueError("not one SEQUENCE")
        top = _pairs(value)
        tcb_tag, tcb_value = top[f"{base}.2"]
        if tcb_tag != 0x30:
            raise ValueError("TCB is not a SEQUENCE")
        tcb = _pairs(tcb_value)
        components = tuple(_int(*tcb[f"{base}.2.{i}"]) for i in range(1, 17))
        config: list[tuple[str, bool]] = []
        if f"{base}.7" in top:
            names = {f"{base}.7.1": "dynamicPlatform", f"{base}.7.2": "cachedKeys", f"{base}.7.3": "SMTEnabled"}
            for oid, (t, v) in _pairs(top[f"{base}.7"][1]).items():
                if t != 0x01 or len(v) != 1:
                    raise ValueError("configuration values must be BOOLEAN")
                config.append((names.get(oid, oid), v != b"\x00"))
        return PckExtension(
            ppid=_octets(*top[f"{base}.1"], 16),
            tcb_components=components,
            pce_svn=_int(*tcb[f"{base}.2.17"]),
            cpu_svn=_octets(*tcb[f"{base}.2.18"], 16),
            pce_id=_octets(*top[f"{base}.3"], 2),
            fmspc=_octets(*top[f"{base}.4"], 6),
            sgx_type=_int(*top[f"{base}.5"]),
            platform_instance_id=_octets(*top[f"{base}.6"]) if f"{base}.6" in top else None,
            configuration=tuple(config),
        )
    except KeyError as exc:
        raise VerificationError(check, f"the SGX extension lacks {exc.args[0]}") from None
    except ValueError as exc:
        raise VerificationError(check, f"the SGX extension is malformed ({exc})") from None
