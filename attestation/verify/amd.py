"""AMD SEV-SNP report verification (spec/attestation.md §3.5).

Evidence: a bare 0x4A0-byte report, or an extended report = report || certificate table as SNP_GET_EXT_REPORT
writes it (offsets from the start of the table; see `attestation.formats.snp`). The VCEK/VLEK comes from `vcek`
(DER or PEM; it wins over the table) or from the table's VCEK/VLEK entry.

Trust: the only anchor is the ARK of `roots.amd_for(product)`. Certificates from `cert_chain` (PEM, ASK/ASVK then
ARK, the KDS order) or from the table only supply intermediates: the table's ARK entry, the last certificate of a
`cert_chain` of two or more, and any self-signed certificate among them must be that very ARK ("ark" otherwise).
The intermediate is the first supplied certificate named as the leaf's issuer, else the ASK/ASVK of `roots`
(supplied certificates that did not issue the leaf are ignored, as in any path building).

Checks, in order, each failing with a `VerificationError` whose `check` is:
  "reserved"          the unsigned bytes 0x330..0x4A0 are not zero
  "vcek"              no VCEK/VLEK certificate was given
  "product"           the product cannot be told (CPUID, productName, issuer names), the CPUID and the
                      certificate disagree, or `roots` has no ARK for it
  "ark"               the trusted ARK is not a valid self-signed CA at `now`, or a supplied ARK is another one
  "ask"               no ASK/ASVK issued the leaf, or it is not signed by the ARK / not valid at `now`
  "vcek-chain"        the VCEK/VLEK is not signed by the ASK/ASVK or not valid at `now`
  "signature-algo"    SIGNATURE_ALGO is not 1 (ECDSA P-384 SHA-384)
  "signer"            the signer info does not name the kind of key given (VCEK 0, VLEK 1), or the chip key is masked
  "report-signature"  the ECDSA P-384 signature (little-endian r, s) over report[0:0x2A0] does not verify
  "vcek-tcb"          an SPL extension is missing or differs from REPORTED_TCB (FMC too on Turin)
  "vcek-chip-id"      the VCEK hwID differs from CHIP_ID (Turin: its first 8 bytes); a masked (all-zero) CHIP_ID
                      is accepted, the signature already binds the chip-unique VCEK
  "debug"             the guest POLICY allows debugging (bit 19) and the policy does not allow it
  "measurement"       MEASUREMENT is not one of `policy.measurements`
  "report-data"       REPORT_DATA differs from `policy.report_data` (the exact 64 bytes)
  "host-data"         HOST_DATA differs from `policy.host_data`
  "vmpl"              VMPL differs from `policy.vmpl`
  "tcb"               a REPORTED_TCB component is below `policy.min_snp_tcb` (FMC only for Turin)
"""

from __future__ import annotations

import dataclasses
import warnings
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.errors import FormatError, VerificationError
from attestation.formats.snp import (
    AMD_OID_PREFIX,
    GUID_ARK,
    GUID_ASK,
    GUID_VCEK,
    GUID_VLEK,
    REPORT_SIZE,
    SIGNATURE_ALGO_ECDSA_P384_SHA384,
    SIGNED_SIZE,
    SIGNING_KEY_VCEK,
    SIGNING_KEY_VLEK,
    AmdCertExtensions,
    CertTable,
    SnpReport,
    TcbVersion,
    is_turin_layout,
    normalise_product,
    parse_amd_extensions,
    parse_evidence,
    parse_report,
)
from attestation.roots import AMD_PRODUCTS, TrustedRoots, fingerprint, pinned
from attestation.verify.claims import Claims
from attestation.verify.policy import Policy, SnpTcb
from attestation.verify.x509util import (
    check_issued_by,
    check_validity,
    ecdsa_raw_verify,
    load_cert,
    load_pem_chain,
)

__all__ = [
    "AmdChain",
    "amd_extensions",
    "certificate_kind",
    "verify_cert_chain",
    "verify_snp",
    "verify_vcek",
]


@dataclasses.dataclass(frozen=True)
class AmdChain:
    """A VCEK/VLEK verified up to the trusted ARK of its product."""

    product: str
    kind: str  # "vcek" | "vlek"
    leaf: x509.Certificate
    intermediate: x509.Certificate  # ASK (VCEK) or ASVK (VLEK)
    ark: x509.Certificate
    extensions: AmdCertExtensions


def amd_extensions(cert: x509.Certificate, field: str = "vcek") -> AmdCertExtensions:
    """The AMD extensions (structVersion, productName, SPLs, hwID, cspId) of a VCEK/VLEK certificate."""
    try:
        extensions = list(cert.extensions)
    except ValueError as exc:
        raise FormatError(f"{field}.extensions", f"unreadable extensions ({exc})") from None
    values = {
        ext.oid.dotted_string: ext.value.value
        for ext in extensions
        if isinstance(ext.value, x509.UnrecognizedExtension) and ext.oid.dotted_string.startswith(AMD_OID_PREFIX)
    }
    return parse_amd_extensions(values)


def _common_name(cert: x509.Certificate) -> str:
    try:
        attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    except ValueError:
        return ""
    return str(attrs[0].value) if attrs else ""


def certificate_kind(cert: x509.Certificate, extensions: AmdCertExtensions | None = None) -> str:
    """'vlek' for a certificate named SEV-VLEK or carrying a cspId, else 'vcek'."""
    if _common_name(cert).upper() == "SEV-VLEK":
        return "vlek"
    ext = extensions if extensions is not None else amd_extensions(cert)
    return "vlek" if ext.csp_id is not None else "vcek"


def _product_from_names(certs: list[x509.Certificate]) -> str | None:
    """The product named by an AMD CA (ARK-Milan, SEV-Milan, SEV-VLEK-Milan) or issuer name."""
    names: list[str] = []
    for cert in certs:
        names.append(_common_name(cert))
        try:
            names.extend(str(a.value) for a in cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME))
        except ValueError:
            continue
    for name in names:
        last = name.rsplit("-", 1)[-1]
        for product in AMD_PRODUCTS:
            if name.upper().startswith(("ARK-", "SEV-")) and last.lower() == product.lower():
                return product
    return None


def _load(data: bytes, field: str) -> x509.Certificate:
    """One certificate with every part the checks read parsed now, so hostile DER is a FormatError."""
    try:
        cert = load_cert(data, field)
    except x509.InvalidVersion as exc:
        raise FormatError(field, f"not an X.509 v3 certificate ({exc})") from None
    _readable(cert, field)
    return cert


def _readable(cert: x509.Certificate, field: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Attribute's length must be ..." for odd names
        try:
            _ = (cert.subject, cert.issuer, cert.not_valid_before_utc, cert.not_valid_after_utc, cert.public_key())
            list(cert.extensions)
        except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
            raise FormatError(field, f"unreadable certificate ({exc})") from None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate, now: datetime, check: str) -> None:
    """Validity at `now` and the signature by `issuer`, any failure as VerificationError(check)."""
    check_validity(cert, now, check)
    try:
        check_issued_by(cert, issuer, check)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise VerificationError(check, f"cannot check the signature of {_common_name(cert)} ({exc})") from None


def _is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


@dataclasses.dataclass(frozen=True)
class _Supplied:
    """Certificates that came with the evidence: only intermediates are used; the ARKs must be the trusted one."""

    intermediates: tuple[x509.Certificate, ...] = ()
    arks: tuple[x509.Certificate, ...] = ()

    @property
    def all(self) -> list[x509.Certificate]:
        return [*self.intermediates, *self.arks]


def _supplied_certs(cert_chain: bytes | None, table: CertTable | None) -> _Supplied:
    """cert_chain: PEM, ASK/ASVK then ARK (a chain of two or more ends in its ARK); table: its ASK and ARK."""
    intermediates: list[x509.Certificate] = []
    arks: list[x509.Certificate] = []
    if cert_chain:
        chain = list(load_pem_chain(cert_chain, "cert_chain"))
        for i, cert in enumerate(chain):
            _readable(cert, f"cert_chain[{i}]")
            is_last = i == len(chain) - 1 and len(chain) > 1
            (arks if is_last or _is_self_signed(cert) else intermediates).append(cert)
    if table is not None:
        der = table.get(GUID_ASK)
        if der is not None:
            cert = _load(der, "cert_table.ASK")
            (arks if _is_self_signed(cert) else intermediates).append(cert)
        der = table.get(GUID_ARK)
        if der is not None:
            arks.append(_load(der, "cert_table.ARK"))
    return _Supplied(tuple(intermediates), tuple(arks))


def _trusted_ark(product: str, roots: TrustedRoots, supplied: _Supplied, now: datetime) -> x509.Certificate:
    amd = roots.amd_for(product)
    if amd is None:
        raise VerificationError("product", f"no trusted AMD root (ARK) for {product}")
    for cert in supplied.arks:
        if cert != amd.ark:
            raise VerificationError("ark", f"the supplied {_common_name(cert) or 'root'} is not the trusted ARK")
    _issued_by(amd.ark, amd.ark, now, "ark")
    return amd.ark


def _verify_chain(
    leaf: x509.Certificate,
    kind: str,
    product: str,
    *,
    now: datetime,
    roots: TrustedRoots,
    supplied: _Supplied,
) -> tuple[x509.Certificate, x509.Certificate]:
    """ARK (trusted) -> ASK/ASVK -> leaf; returns (intermediate, ark).

    The intermediate is the first certificate named as the leaf's issuer among the supplied ones, then the
    ASK/ASVK of `roots`; supplied intermediates that did not issue the leaf are ignored.
    """
    ark = _trusted_ark(product, roots, supplied, now)
    amd = roots.amd_for(product)
    assert amd is not None
    candidates = [*supplied.intermediates]
    candidates += [c for c in ((amd.asvk, amd.ask) if kind == "vlek" else (amd.ask, amd.asvk)) if c is not None]
    intermediate = next((c for c in candidates if c.subject == leaf.issuer), None)
    if intermediate is None:
        raise VerificationError(
            "ask",
            f"no {'ASVK' if kind == 'vlek' else 'ASK'} named {leaf.issuer.rfc4514_string()} (the {kind.upper()} "
            "issuer)",
        )
    _issued_by(intermediate, ark, now, "ask")
    _issued_by(leaf, intermediate, now, "vcek-chain")
    return intermediate, ark


def _decide_product(
    cpu_product: str | None, extensions: AmdCertExtensions, certs: list[x509.Certificate], field: str
) -> str:
    cert_product = extensions.product or _product_from_names(certs)
    if cert_product is not None:
        known = next((p for p in AMD_PRODUCTS if p.lower() == cert_product.lower()), None)
        cert_product = known or cert_product
    if cpu_product is not None and cert_product is not None and cpu_product.lower() != cert_product.lower():
        raise VerificationError("product", f"the report CPUID says {cpu_product}, the {field} says {cert_product}")
    product = cpu_product or cert_product
    if product is None:
        raise VerificationError("product", "cannot tell the AMD product (no CPUID, productName or AMD issuer name)")
    return product


def verify_vcek(
    vcek: bytes | x509.Certificate,
    *,
    now: datetime,
    roots: TrustedRoots | None = None,
    product: str | None = None,
    cert_chain: bytes | None = None,
    table: CertTable | None = None,
    kind: str | None = None,
) -> AmdChain:
    """Verify a VCEK or VLEK up to the trusted ARK of its product (chain and validity only).

    product: the expected product (else the productName, else the issuer names); kind: "vcek" or "vlek" (else
    from the certificate's name / cspId).
    """
    roots = roots or pinned()
    if isinstance(vcek, x509.Certificate):
        leaf = vcek
        _readable(leaf, "vcek")
    else:
        leaf = _load(vcek, "vcek")
    extensions = amd_extensions(leaf)
    kind = kind or certificate_kind(leaf, extensions)
    supplied = _supplied_certs(cert_chain, table)
    product = _decide_product(
        normalise_product(product) if product else None, extensions, [leaf, *supplied.all], kind.upper()
    )
    intermediate, ark = _verify_chain(leaf, kind, product, now=now, roots=roots, supplied=supplied)
    return AmdChain(product, kind, leaf, intermediate, ark, extensions)


def verify_cert_chain(
    cert_chain: bytes, *, now: datetime, roots: TrustedRoots | None = None, product: str | None = None
) -> tuple[str, tuple[x509.Certificate, ...]]:
    """Verify a KDS `cert_chain` (ASK or ASVK, then ARK) against the trusted ARK; returns (product, intermediates)."""
    roots = roots or pinned()
    supplied = _supplied_certs(cert_chain, None)
    product = normalise_product(product) if product else _product_from_names(supplied.all)
    if product is None:
        raise VerificationError("product", "cannot tell the AMD product from the chain's names")
    ark = _trusted_ark(product, roots, supplied, now)
    if not supplied.intermediates:
        raise VerificationError("ask", "the chain holds no ASK/ASVK")
    for cert in supplied.intermediates:
        _issued_by(cert, ark, now, "ask")
    return product, supplied.intermediates


def _check_report_against_cert(report: SnpReport, chain: AmdChain) -> None:
    ext = chain.extensions
    for name, value in report.reported_tcb.components():
        spl = ext.spl_for(name)
        if spl is None:
            raise VerificationError("vcek-tcb", f"the {chain.kind.upper()} has no {name} SPL extension")
        if spl != value:
            raise VerificationError(
                "vcek-tcb", f"REPORTED_TCB {name} is {value}, the {chain.kind.upper()} is for {name} {spl}"
            )
    if chain.kind != "vcek":
        return
    hwid = ext.hwid
    if hwid is None:
        raise VerificationError("vcek-chip-id", "the VCEK has no hwID extension")
    expected_len = 8 if report.turin_layout else 64
    if len(hwid) != expected_len:
        raise VerificationError("vcek-chip-id", f"the VCEK hwID is {len(hwid)} bytes, not {expected_len}")
    if not any(report.chip_id):
        return  # CHIP_ID masked by the host (MASK_CHIP_ID): the signature already binds the chip's VCEK
    if report.chip_id[:expected_len] != hwid:
        raise VerificationError("vcek-chip-id", "the report CHIP_ID is not the VCEK hwID")


def _check_signature(raw: bytes, report: SnpReport, chain: AmdChain) -> None:
    if report.signature_algo != SIGNATURE_ALGO_ECDSA_P384_SHA384:
        raise VerificationError("signature-algo", f"SIGNATURE_ALGO is {report.signature_algo}, not 1 (ECDSA P-384)")
    signer = report.signer_info
    expected = SIGNING_KEY_VLEK if chain.kind == "vlek" else SIGNING_KEY_VCEK
    if signer.signing_key != expected:
        raise VerificationError(
            "signer", f"the report says it is signed by {signer.signing_key_name}, the certificate is a {chain.kind}"
        )
    if signer.mask_chip_key:
        raise VerificationError("signer", "MASK_CHIP_KEY is set: the report is not signed")
    key = chain.leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise VerificationError("report-signature", f"the {chain.kind.upper()} key is not an ECDSA P-384 key")
    ecdsa_raw_verify(
        key, raw[SIGNED_SIZE : SIGNED_SIZE + 144], raw[:SIGNED_SIZE], hashes.SHA384(), "report-signature",
        byteorder="little",
    )


def _check_policy(report: SnpReport, policy: Policy) -> None:
    if report.policy.debug and not policy.allow_debug:
        raise VerificationError("debug", "the guest policy allows debugging (POLICY bit 19)")
    if policy.measurements and report.measurement not in policy.measurements:
        raise VerificationError("measurement", f"MEASUREMENT {report.measurement.hex()} is not an expected one")
    if policy.report_data is not None and report.report_data != policy.report_data:
        raise VerificationError("report-data", "REPORT_DATA is not the expected value")
    if policy.host_data is not None and report.host_data != policy.host_data:
        raise VerificationError("host-data", f"HOST_DATA {report.host_data.hex()} is not the expected value")
    if policy.vmpl is not None and report.vmpl != policy.vmpl:
        raise VerificationError("vmpl", f"VMPL is {report.vmpl}, not {policy.vmpl}")
    if policy.min_snp_tcb is not None:
        _check_min_tcb(report.reported_tcb, policy.min_snp_tcb)


def _check_min_tcb(tcb: TcbVersion, minimum: SnpTcb) -> None:
    for name, value in tcb.components():
        floor = getattr(minimum, name)
        if value < floor:
            raise VerificationError("tcb", f"REPORTED_TCB {name} {value} is below the minimum {floor}")


def _claims(report: SnpReport, chain: AmdChain, *, now: datetime, roots: TrustedRoots) -> Claims:
    def tcb_hex(tcb: TcbVersion) -> str:
        return tcb.to_bytes().hex()

    details: list[tuple[str, str]] = [
        ("version", str(report.version)),
        ("policy", f"0x{report.policy.value:x}"),
        ("vmpl", str(report.vmpl)),
        ("guest_svn", str(report.guest_svn)),
        ("chip_id", report.chip_id.hex() if any(report.chip_id) else "masked"),
        ("signing_key", chain.kind),
        ("product_name", chain.extensions.product_name or ""),
        ("family_id", report.family_id.hex()),
        ("image_id", report.image_id.hex()),
        ("report_id", report.report_id.hex()),
        ("id_key_digest", report.id_key_digest.hex()),
        ("author_key_digest", report.author_key_digest.hex()),
        ("platform_info", f"0x{report.platform_info.value:x}"),
        ("current_tcb", tcb_hex(report.current_tcb)),
        ("reported_tcb", tcb_hex(report.reported_tcb)),
        ("committed_tcb", tcb_hex(report.committed_tcb)),
        ("launch_tcb", tcb_hex(report.launch_tcb)),
        ("firmware", f"{report.current_major}.{report.current_minor}.{report.current_build}"),
    ]
    if report.cpuid is not None:
        details.append(("cpuid", f"{report.cpuid.family:02x}/{report.cpuid.model:02x}/{report.cpuid.stepping:02x}"))
    if chain.extensions.csp_id is not None:
        details.append(("csp_id", chain.extensions.csp_id))
    return Claims(
        tee="sev-snp",
        measurement=report.measurement,
        report_data=report.report_data,
        debug=report.policy.debug,
        verified_at=now,
        root_fingerprint=fingerprint(chain.ark),
        simulated=not roots.vendor,
        host_data=report.host_data,
        product=chain.product,
        tcb=report.reported_tcb.components(),
        details=tuple(details),
    )


def verify_snp(
    evidence: bytes,
    *,
    now: datetime,
    policy: Policy | None = None,
    roots: TrustedRoots | None = None,
    vcek: bytes | None = None,
    cert_chain: bytes | None = None,
) -> Claims:
    """Verify an SEV-SNP report (bare or extended) at `now`; FormatError / VerificationError on failure."""
    if now.tzinfo is None:
        raise VerificationError("time", "`now` must be timezone-aware")
    policy = policy or Policy()
    roots = roots or pinned()
    evidence = bytes(evidence)
    report, table = parse_evidence(evidence)
    raw = evidence[:REPORT_SIZE]
    if any(report.reserved_330):
        raise VerificationError("reserved", "the unsigned bytes after the signature (0x330..0x4A0) are not zero")

    kind_hint: str | None = None
    leaf_bytes, leaf_field = vcek, "vcek"
    if leaf_bytes is None and table is not None:
        for guid, kind in ((GUID_VCEK, "vcek"), (GUID_VLEK, "vlek")):
            der = table.get(guid)
            if der is not None:
                leaf_bytes, kind_hint, leaf_field = der, kind, f"cert_table.{kind.upper()}"
                break
    if leaf_bytes is None:
        raise VerificationError("vcek", "no VCEK/VLEK: pass `vcek` or an extended report with its certificate table")
    leaf = _load(leaf_bytes, leaf_field)
    extensions = amd_extensions(leaf)
    kind = kind_hint or certificate_kind(leaf, extensions)
    supplied = _supplied_certs(cert_chain, table)

    cpu_product = None
    if report.cpuid is not None and (report.cpuid.family or report.cpuid.model):
        cpu_product = report.product
        if cpu_product is None:
            raise VerificationError(
                "product", f"unknown CPUID family 0x{report.cpuid.family:x} model 0x{report.cpuid.model:x}"
            )
    product = _decide_product(cpu_product, extensions, [leaf, *supplied.all], kind.upper())
    if is_turin_layout(product) != report.turin_layout:
        report = parse_report(raw, product=product)

    intermediate, ark = _verify_chain(leaf, kind, product, now=now, roots=roots, supplied=supplied)
    chain = AmdChain(product, kind, leaf, intermediate, ark, extensions)
    _check_signature(raw, report, chain)
    _check_report_against_cert(report, chain)
    _check_policy(report, policy)
    return _claims(report, chain, now=now, roots=roots)
