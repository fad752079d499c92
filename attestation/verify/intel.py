"""Verify Intel DCAP quotes (SGX v3, TDX v4/v5) against the Intel SGX Root CA and QuoteCollateralV3 collateral.

Steps (spec/attestation.md §1.5, in this order; each failure is a `VerificationError` naming its check):

 0. quote header: ECDSA P-256 attestation key, Intel QE vendor ID                          "quote-header"
    the PCK chain is carried in the quote (type 5, or type 6 wrapping 5)                   "certification-data"
    collateral present, unless the policy says `require_tcb=False`                         "tcb-required"
 1. TCB Info: issuer chain to the trusted root + root CRL, ECDSA signature over the exact
    JSON text, kind and dates        "tcb-info-chain", "root-crl", "tcb-info-signature", "tcb-info", "tcb-info-validity"
 2. QE Identity: the same          "qe-identity-chain", "qe-identity-signature", "qe-identity", "qe-identity-validity"
 3. PCK chain leaf -> PCK Processor/Platform CA -> root at `now`; root CRL covers the CA,
    the PCK CRL (issued by that CA) covers the leaf                          "pck-chain", "root-crl", "pck-crl"
 4. QE report signed by the PCK leaf key                                                   "qe-report-signature"
 5. QE report_data = SHA-256(attestation key || QE auth data) || 32 zero bytes             "qe-report-binding"
 6. QE report matches the QE Identity (MRSIGNER, ISVPRODID, masked MISCSELECT and
    ATTRIBUTES) and has a QE TCB level                                                     "qe-identity", "qe-tcb"
 7. quote signature by the attestation key over header || body                             "quote-signature"
 8. FMSPC/PCE-ID of the PCK certificate = TCB Info; first TCB level reached by the PCK
    SVNs (and for TDX by TEE_TCB_SVN); TDX module identity                       "fmspc", "tcb-level", "tdx-module"
 9. merged platform / QE / module status; Revoked is always refused                        "tcb-status"
10. debug enclave or TD; TD attributes (reserved bits, SEPT_VE_DISABLE); MRSERVICETD
                                                                      "debug", "td-attributes", "mr-servicetd"
then the Policy: "measurement", "mrsigner", "rtmr", "report-data", "mr-config-id", "isv-svn", "tcb-status", "policy".
Also: "time" (naive `now`), "collateral" (malformed QuoteCollateralV3). Malformed quote bytes raise `FormatError`.

Choices where the spec leaves room:
- The TCB Info / QE Identity signer must be the "Intel SGX TCB Signing" certificate issued directly by the root (not
  a CA): any other certificate under the root, such as a PCK certificate whose key sits in a platform, could
  otherwise vouch for TCB data. The PCK chain must be exactly "Intel SGX PCK Certificate" -> "Intel SGX PCK
  Processor/Platform CA" -> root.
- TDX module: a module of major version > 0 (TEE_TCB_SVN[1]) must match its `TDX_%02X` entry of
  `tdxModuleIdentities` (MRSIGNERSEAM, masked SEAMATTRIBUTES, a level for TEE_TCB_SVN[0]); a version-0 module, or a
  TCB Info without module identities, is held to `tdxModule`. TD report 1.5's TEE_TCB_SVN2 is reported, not matched.
- Statuses merge as the worst of platform, QE and module (`intel_collateral.merge_statuses`); advisory IDs are the
  union, platform first. Identity levels may only be UpToDate, OutOfDate or Revoked.
- A policy requirement that cannot apply fails instead of being ignored: MRSIGNER or ISVSVN for a TD, RTMRs for an
  enclave, SNP/Nitro fields ("policy"). `mr_config_id` is MRCONFIGID (48 bytes) for a TD and CONFIGID (64) for an
  enclave; a `report_data` shorter than 64 bytes is compared zero-padded.

Without collateral (allowed only with `Policy(require_tcb=False)`) steps 1, 2, 6, 8 and 9 are skipped and the
revocation lists are not consulted: the claims say `tcb_status=None`. The chain to the root and every signature are
still verified, and a debug QE is refused.

Verifying the same collateral or PCK chain again at the same `now` hits small in-process caches of the pure,
expensive steps (chain walks, ECDSA verifications), so checking thousands of variants of one quote stays fast.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attestation.errors import FormatError, VerificationError
from attestation.formats.intel_common import (
    ATT_KEY_TYPE_ECDSA_P256,
    INTEL_QE_VENDOR_ID,
    EnclaveReportBody,
    PckCertChain,
    QeReportCertificationData,
)
from attestation.formats.sgx import SgxQuoteV3, parse_quote
from attestation.formats.tdx import (
    TD_ATTR_RESERVED_TUD,
    TD_ATTR_SEPT_VE_DISABLE,
    TdReport10,
    TdReport15,
    TdxQuote,
)
from attestation.roots import TrustedRoots, fingerprint, pinned
from attestation.verify.claims import Claims
from attestation.verify.intel_collateral import (
    REVOKED,
    EnclaveIdentity,
    IsvTcbLevel,
    PckExtension,
    QuoteCollateral,
    TcbInfo,
    TcbLevel,
    first_isv_level,
    masked_equal,
    merge_statuses,
    parse_enclave_identity,
    parse_pck_extension,
    parse_tcb_info,
)
from attestation.verify.policy import Policy
from attestation.verify.x509util import (
    check_chain,
    check_crl,
    check_issued_by,
    check_not_revoked,
    check_validity,
    ecdsa_raw_verify,
    load_cert,
    load_pem_chain,
)

__all__ = ["verify_intel"]

TCB_SIGNING_CN = "Intel SGX TCB Signing"
PCK_LEAF_CN = "Intel SGX PCK Certificate"
PCK_CA_CNS = {"Intel SGX PCK Processor CA": "processor", "Intel SGX PCK Platform CA": "platform"}
QE_IDENTITY_IDS = {"sgx": "QE", "tdx": "TD_QE"}
TCB_INFO_IDS = {"sgx": "SGX", "tdx": "TDX"}

CollateralInput = str | bytes | Mapping[str, Any] | QuoteCollateral


@dataclasses.dataclass(frozen=True)
class _Quote:
    """The parts of an SGX v3 or v4/v5 quote the steps need, in one shape."""

    tee: str  # "sgx" | "tdx"
    raw: SgxQuoteV3 | TdxQuote
    body: EnclaveReportBody | TdReport10
    signed: bytes
    signature: bytes
    attestation_key: bytes
    qe_report: EnclaveReportBody
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain: PckCertChain


def _view(quote: SgxQuoteV3 | TdxQuote) -> _Quote:
    header = quote.header
    if header.att_key_type != ATT_KEY_TYPE_ECDSA_P256:
        raise VerificationError("quote-header", f"attestation key type {header.att_key_type} is not ECDSA P-256 (2)")
    if header.qe_vendor_id != INTEL_QE_VENDOR_ID:
        raise VerificationError("quote-header", f"QE vendor ID {header.qe_vendor_id.hex()} is not Intel's")
    sig = quote.signature_data
    if isinstance(quote, SgxQuoteV3):
        qe_report, qe_sig, auth = sig.qe_report, sig.qe_report_signature, sig.qe_auth_data
        chain = sig.certification_data
    else:
        outer = sig.certification_data
        if not isinstance(outer, QeReportCertificationData):
            raise VerificationError(
                "certification-data", f"certification data type {outer.cert_type}, not 6 (QE report)"
            )
        qe_report, qe_sig, auth, chain = (
            outer.qe_report, outer.qe_report_signature, outer.qe_auth_data, outer.certification_data,
        )
    if not isinstance(chain, PckCertChain):
        raise VerificationError("certification-data", f"certification data type {chain.cert_type}, not 5 (PCK chain)")
    return _Quote(
        tee=quote.tee,
        raw=quote,
        body=quote.body,
        signed=quote.signed_bytes(),
        signature=sig.quote_signature,
        attestation_key=sig.attestation_key,
        qe_report=qe_report,
        qe_report_signature=qe_sig,
        qe_auth_data=auth,
        pck_chain=chain,
    )


# --- cached pure steps -------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _p256_ok(point: bytes, signature: bytes, data: bytes) -> bool:
    """ECDSA P-256/SHA-256 with a raw r||s signature; `point` is the uncompressed SEC1 key (0x04 || x || y)."""
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        ecdsa_raw_verify(key, signature, data, hashes.SHA256(), "signature")
    except (ValueError, VerificationError):
        return False
    return True


def _point(key: object, check: str) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise VerificationError(check, "the signing certificate's key is not ECDSA P-256")
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _verify_p256(point: bytes, signature: bytes, data: bytes, check: str, what: str) -> None:
    if not _p256_ok(point, signature, data):
        raise VerificationError(check, f"{what} does not verify")


def _cn(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


@lru_cache(maxsize=64)
def _collateral_from_text(text: str | bytes) -> QuoteCollateral:
    return QuoteCollateral.from_json(text)


def _collateral(value: CollateralInput) -> QuoteCollateral:
    if isinstance(value, QuoteCollateral):
        return value
    if isinstance(value, str | bytes):
        return _collateral_from_text(value)
    return QuoteCollateral.from_json(value)


@lru_cache(maxsize=64)
def _load_crl(der: bytes, name: str) -> x509.CertificateRevocationList:
    try:
        return x509.load_der_x509_crl(der)
    except ValueError as exc:
        raise VerificationError("collateral", f"{name} is not a DER CRL ({exc})") from None


@dataclasses.dataclass(frozen=True)
class _Collateral:
    tcb_info: TcbInfo
    qe_identity: EnclaveIdentity
    root_crl: x509.CertificateRevocationList
    pck_crl: x509.CertificateRevocationList
    pck_crl_der: bytes


def _signed_json_signer(chain_pem: str, anchor: x509.Certificate, root_crl: x509.CertificateRevocationList,
                        now: datetime, check: str) -> bytes:
    """The TCB Signing certificate of an issuer chain, checked: issued directly by the root, not a CA, named
    "Intel SGX TCB Signing", not revoked. Without these a PCK key (held by the platform) could sign TCB data."""
    try:
        chain = load_pem_chain(chain_pem.encode(), check)
        for cert in chain:
            _decode_fully(cert)
    except FormatError as exc:
        raise VerificationError(check, exc.message) from None
    except _DECODE_ERRORS as exc:
        raise VerificationError(check, f"malformed certificate ({exc})") from None
    check_chain(chain, anchor, now, check)
    signer = chain[0]
    if len([c for c in chain if c != anchor]) != 1 or _cn(signer) != TCB_SIGNING_CN:
        raise VerificationError(check, f"the signer must be the '{TCB_SIGNING_CN}' certificate issued by the root")
    try:
        bc = signer.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise VerificationError(check, "the TCB Signing certificate must not be a CA")
    except x509.ExtensionNotFound:
        pass
    check_not_revoked(signer, root_crl, "root-crl")
    return _point(signer.public_key(), check)


def _check_dates(issue: datetime, next_update: datetime, now: datetime, check: str, what: str) -> None:
    if not issue <= now <= next_update:
        raise VerificationError(
            check, f"{what} is valid {issue.isoformat()} .. {next_update.isoformat()}, not at {now.isoformat()}"
        )


@lru_cache(maxsize=32)
def _verified_collateral(col: QuoteCollateral, anchor: x509.Certificate, now: datetime, tee: str) -> _Collateral:
    """Steps 1 and 2 (and the root CRL they depend on)."""
    root_crl = _load_crl(col.root_ca_crl, "root_ca_crl")
    check_crl(root_crl, anchor, now, "root-crl")
    pck_crl = _load_crl(col.pck_crl, "pck_crl")

    point = _signed_json_signer(col.tcb_info_issuer_chain, anchor, root_crl, now, "tcb-info-chain")
    _verify_p256(point, col.tcb_info_signature, col.tcb_info.encode(), "tcb-info-signature", "the TCB Info signature")
    tcb_info = parse_tcb_info(col.tcb_info)
    if tcb_info.id != TCB_INFO_IDS[tee]:
        raise VerificationError("tcb-info", f"TCB Info {tcb_info.id!r} does not apply to a {tee.upper()} quote")
    if tcb_info.tcb_type != 0:
        raise VerificationError("tcb-info", f"TCB type {tcb_info.tcb_type} is not supported (only 0)")
    _check_dates(tcb_info.issue_date, tcb_info.next_update, now, "tcb-info-validity", "the TCB Info")

    point = _signed_json_signer(col.qe_identity_issuer_chain, anchor, root_crl, now, "qe-identity-chain")
    _verify_p256(
        point, col.qe_identity_signature, col.qe_identity.encode(), "qe-identity-signature",
        "the QE Identity signature",
    )
    identity = parse_enclave_identity(col.qe_identity)
    if identity.id != QE_IDENTITY_IDS[tee]:
        raise VerificationError("qe-identity", f"QE Identity {identity.id!r} does not apply to a {tee.upper()} quote")
    _check_dates(identity.issue_date, identity.next_update, now, "qe-identity-validity", "the QE Identity")
    return _Collateral(tcb_info, identity, root_crl, pck_crl, col.pck_crl)


# What `cryptography` raises on certificates it can load but not fully decode.
_DECODE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


@lru_cache(maxsize=256)
def _load_pck_cert(der: bytes) -> x509.Certificate:
    """A certificate of the quote's PCK chain, fully decoded now: `cryptography` decodes names, extensions and the
    key lazily, and a malformed one must fail here as a FormatError, not later as a stray ValueError."""
    field = "certification_data.pck_cert_chain"
    cert = load_cert(der, field)
    try:
        _decode_fully(cert)
    except _DECODE_ERRORS as exc:
        raise FormatError(field, f"malformed certificate ({exc})") from None
    return cert


def _decode_fully(cert: x509.Certificate) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a negative serial number: refused later by a signature check
        _ = (cert.issuer, cert.subject, cert.extensions, cert.public_key(), cert.signature_hash_algorithm,
             cert.not_valid_before_utc, cert.not_valid_after_utc, cert.serial_number)


@lru_cache(maxsize=256)
def _issuance_error(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """`check_issued_by` (names, CA flag, signature), remembered per pair: a verifier fed many variants of one quote
    re-checks only the links that changed."""
    try:
        check_issued_by(cert, issuer, "link")
    except VerificationError as exc:
        return exc.message
    return None


def _check_chain_cached(certs: list[x509.Certificate], anchor: x509.Certificate, now: datetime, check: str) -> None:
    """`x509util.check_chain` with remembered signature checks (validity is always re-checked at `now`)."""
    check_validity(anchor, now, check)
    for cert, issuer in [(anchor, anchor), *zip(certs, [*certs[1:], anchor], strict=True)]:
        if cert is not anchor:
            check_validity(cert, now, check)
        error = _issuance_error(cert, issuer)
        if error is not None:
            raise VerificationError(check, error)


@lru_cache(maxsize=64)
def _crl_error(crl_der: bytes, issuer: x509.Certificate, now: datetime) -> str | None:
    try:
        check_crl(_load_crl(crl_der, "crl"), issuer, now, "crl")
    except VerificationError as exc:
        return exc.message
    return None


def _check_crl_cached(crl_der: bytes, issuer: x509.Certificate, now: datetime, check: str) -> None:
    error = _crl_error(crl_der, issuer, now)
    if error is not None:
        raise VerificationError(check, error)


@lru_cache(maxsize=64)
def _anchor_for(chain: tuple[bytes, ...], anchors: tuple[x509.Certificate, ...]) -> tuple[x509.Certificate, int]:
    """The trusted root the PCK chain ends in, and how many of its certificates lie below it."""
    last = _load_pck_cert(chain[-1])
    for anchor in anchors:
        if anchor.public_bytes(Encoding.DER) == chain[-1]:
            return anchor, len(chain) - 1
    for anchor in anchors:
        if last.issuer == anchor.subject and last.issuer != last.subject:
            return anchor, len(chain)
    raise VerificationError("pck-chain", "the PCK chain does not end in a trusted Intel root")


@dataclasses.dataclass(frozen=True)
class _Pck:
    leaf: x509.Certificate
    ca: x509.Certificate
    ca_type: str  # "processor" | "platform"
    point: bytes
    extension: PckExtension


@lru_cache(maxsize=64)
def _verified_pck(chain: tuple[bytes, ...], anchor: x509.Certificate, below: int, now: datetime) -> _Pck:
    """Step 3 without CRLs: exactly PCK leaf -> PCK CA -> root, each valid at `now`, plus the SGX extension."""
    if below != 2:
        raise VerificationError("pck-chain", f"expected PCK leaf and PCK CA below the root, got {below} certificates")
    certs = [_load_pck_cert(der) for der in chain[:below]]
    _check_chain_cached(certs, anchor, now, "pck-chain")
    leaf, ca = certs
    ca_type = PCK_CA_CNS.get(_cn(ca))
    if ca_type is None or _cn(leaf) != PCK_LEAF_CN:
        raise VerificationError(
            "pck-chain", f"expected '{PCK_LEAF_CN}' issued by a PCK Processor/Platform CA, got "
            f"'{_cn(leaf)}' issued by '{_cn(ca)}'"
        )
    return _Pck(leaf, ca, ca_type, _point(leaf.public_key(), "pck-chain"), parse_pck_extension(leaf))


# --- TCB evaluation ----------------------------------------------------------------------------------------------


def _reaches(wanted: tuple[int, ...] | None, have: tuple[int, ...] | bytes) -> bool:
    """Every SVN is at least the level's (a level without the component list is never reached)."""
    return wanted is not None and all(w <= h for w, h in zip(wanted, have, strict=True))


def _platform_level(info: TcbInfo, pck: PckExtension, tee_tcb_svn: bytes | None) -> TcbLevel:
    for level in info.tcb_levels:
        if level.pce_svn > pck.pce_svn:
            continue
        if not _reaches(level.sgx_components, pck.tcb_components):
            continue
        if tee_tcb_svn is not None and not _reaches(level.tdx_components, tee_tcb_svn):
            continue
        return level
    raise VerificationError(
        "tcb-level",
        f"no TCB level of FMSPC {info.fmspc.hex()} is reached by PCESVN {pck.pce_svn}, "
        f"SVNs {list(pck.tcb_components)}" + (f", TEE_TCB_SVN {tee_tcb_svn.hex()}" if tee_tcb_svn else ""),
    )


def _tdx_module_level(info: TcbInfo, body: TdReport10) -> IsvTcbLevel | None:
    """MRSIGNERSEAM and SEAMATTRIBUTES against the module's identity: for a module of major version > 0 (TEE_TCB_SVN[1])
    the `TDX_%02X` entry of `tdxModuleIdentities`, which also gives a TCB level (by TEE_TCB_SVN[0]); otherwise, or
    for a TCB Info without module identities, the generic `tdxModule` (no level of its own)."""
    major = body.tdx_module_major_version
    identity = None
    if major > 0 and info.tdx_module_identities is not None:
        wanted = f"TDX_{major:02X}"
        identity = next((m for m in info.tdx_module_identities if m.id.upper() == wanted), None)
        if identity is None:
            raise VerificationError("tdx-module", f"the TCB Info has no TDX module identity {wanted}")
    module = identity or info.tdx_module
    if module is None:
        raise VerificationError("tcb-info", "a TDX TCB Info needs a tdxModule")
    if module.mrsigner != body.mr_signer_seam:
        raise VerificationError(
            "tdx-module", f"MRSIGNERSEAM {body.mr_signer_seam.hex()} is not {module.mrsigner.hex()}"
        )
    if not masked_equal(body.seam_attributes, module.attributes_mask, module.attributes):
        raise VerificationError("tdx-module", f"SEAMATTRIBUTES {body.seam_attributes.hex()} do not match")
    if identity is None:
        return None
    level = first_isv_level(identity.tcb_levels, body.tdx_module_svn)
    if level is None:
        raise VerificationError("tdx-module", f"no {identity.id} TCB level for module SVN {body.tdx_module_svn}")
    return level


def _check_qe_identity(report: EnclaveReportBody, identity: EnclaveIdentity) -> IsvTcbLevel:
    if report.mr_signer != identity.mrsigner:
        raise VerificationError("qe-identity", f"QE MRSIGNER {report.mr_signer.hex()} is not {identity.mrsigner.hex()}")
    if report.isv_prod_id != identity.isv_prod_id:
        raise VerificationError("qe-identity", f"QE ISVPRODID {report.isv_prod_id} is not {identity.isv_prod_id}")
    if report.misc_select & identity.miscselect_mask != identity.miscselect:
        raise VerificationError("qe-identity", f"QE MISCSELECT {report.misc_select:#010x} does not match")
    if not masked_equal(report.attributes, identity.attributes_mask, identity.attributes):
        raise VerificationError("qe-identity", f"QE ATTRIBUTES {report.attributes.hex()} do not match")
    level = first_isv_level(identity.tcb_levels, report.isv_svn)
    if level is None:
        raise VerificationError("qe-tcb", f"no {identity.id} TCB level for QE ISVSVN {report.isv_svn}")
    return level


# --- entry point -------------------------------------------------------------------------------------------------


def verify_intel(
    evidence: bytes,
    *,
    now: datetime,
    policy: Policy | None = None,
    roots: TrustedRoots | None = None,
    collateral: CollateralInput | None = None,
) -> Claims:
    """Verify an SGX v3 / TDX v4-v5 quote at `now` (timezone-aware) and return its claims.

    collateral: dcap-qvl QuoteCollateralV3 (JSON text, bytes, a mapping or a `QuoteCollateral`). Without it the
    quote is checked up to the root and through every signature only, and only if `policy.require_tcb` is False.
    roots: trust anchors (`roots.intel`); the pinned Intel SGX Root CA by default.
    """
    if now.tzinfo is None:
        raise VerificationError("time", "`now` must be timezone-aware")
    policy = policy or Policy()
    roots = roots or pinned()
    q = _view(parse_quote(evidence))
    if collateral is None and policy.require_tcb:
        raise VerificationError("tcb-required", "no collateral given, so no TCB verdict (the policy requires one)")
    if not roots.intel:
        raise VerificationError("pck-chain", "no Intel root is trusted")
    chain = q.pck_chain.certificates
    anchor, below = _anchor_for(chain, tuple(roots.intel))

    # 1-2: TCB Info and QE Identity (with the root CRL)
    col = _verified_collateral(_collateral(collateral), anchor, now, q.tee) if collateral is not None else None

    # 3: PCK chain and revocation
    pck = _verified_pck(chain, anchor, below, now)
    if col is not None:
        check_not_revoked(pck.ca, col.root_crl, "root-crl")
        _check_crl_cached(col.pck_crl_der, pck.ca, now, "pck-crl")
        check_not_revoked(pck.leaf, col.pck_crl, "pck-crl")

    # 4: QE report signed by the PCK key
    qe_bytes = q.qe_report.serialize()
    _verify_p256(pck.point, q.qe_report_signature, qe_bytes, "qe-report-signature", "the QE report signature")

    # 5: the QE report binds the attestation key
    expected = hashlib.sha256(q.attestation_key + q.qe_auth_data).digest() + bytes(32)
    if q.qe_report.report_data != expected:
        raise VerificationError("qe-report-binding", "the QE report does not bind the attestation key and auth data")

    # 6: the QE is Intel's (without collateral, at least not a debug QE)
    qe_level = _check_qe_identity(q.qe_report, col.qe_identity) if col is not None else None
    if q.qe_report.debug:
        raise VerificationError("qe-identity", "the quoting enclave is a debug enclave")

    # 7: the quote signature
    _verify_p256(b"\x04" + q.attestation_key, q.signature, q.signed, "quote-signature", "the quote signature")

    # 8-9: platform TCB, TDX module, merged status
    status: str | None = None
    advisories: tuple[str, ...] = ()
    platform: TcbLevel | None = None
    td = q.body if isinstance(q.body, TdReport10) else None
    if col is not None:
        info = col.tcb_info
        if info.fmspc != pck.extension.fmspc or info.pce_id != pck.extension.pce_id:
            raise VerificationError(
                "fmspc",
                f"the TCB Info is for FMSPC {info.fmspc.hex()} / PCE-ID {info.pce_id.hex()}, the PCK certificate "
                f"says {pck.extension.fmspc.hex()} / {pck.extension.pce_id.hex()}",
            )
        platform = _platform_level(info, pck.extension, td.tee_tcb_svn if td is not None else None)
        module_level = _tdx_module_level(info, td) if td is not None else None
        levels: list[TcbLevel | IsvTcbLevel] = [platform, qe_level] if qe_level else [platform]
        if module_level is not None:
            levels.append(module_level)
        status = merge_statuses(*(level.status for level in levels))
        advisories = tuple(dict.fromkeys(a for level in levels for a in level.advisory_ids))
        if status == REVOKED:
            raise VerificationError("tcb-status", "the platform TCB is revoked")

    # 10: debug and TD attributes
    debug = q.body.debug
    if debug and not policy.allow_debug:
        raise VerificationError("debug", f"the {'TD' if td is not None else 'enclave'} is in debug mode")
    if td is not None:
        attrs = td.td_attributes_value
        if attrs & TD_ATTR_RESERVED_TUD:
            raise VerificationError("td-attributes", f"reserved TD attribute bits are set ({attrs:#018x})")
        if not attrs & TD_ATTR_SEPT_VE_DISABLE:
            raise VerificationError("td-attributes", f"SEPT_VE_DISABLE is not set ({attrs:#018x})")
        if isinstance(td, TdReport15) and any(td.mr_servicetd):
            raise VerificationError("mr-servicetd", "the TD is bound to a service TD (MRSERVICETD is not zero)")

    claims = _claims(q, pck, anchor, roots, now, status, advisories, platform, col)
    _apply_policy(policy, q, claims)
    return claims


def _claims(
    q: _Quote, pck: _Pck, anchor: x509.Certificate, roots: TrustedRoots, now: datetime, status: str | None,
    advisories: tuple[str, ...], platform: TcbLevel | None, col: _Collateral | None,
) -> Claims:
    ext = pck.extension
    tcb: list[tuple[str, int]] = []
    details: list[tuple[str, str]] = [
        ("fmspc", ext.fmspc.hex()),
        ("pck_ca", pck.ca_type),
        ("qe_id", q.raw.header.qe_id.hex()),
        ("quote_version", str(q.raw.header.version)),
    ]
    body = q.body
    if isinstance(body, TdReport10):
        measurement, signer, host_data, rtmrs = body.mr_td, None, body.mr_config_id, tuple(body.rtmrs)
        tcb += [(f"tee_tcb_svn_{i:02d}", v) for i, v in enumerate(body.tee_tcb_svn)]
        details += [
            ("mr_seam", body.mr_seam.hex()),
            ("mr_signer_seam", body.mr_signer_seam.hex()),
            ("seam_attributes", body.seam_attributes.hex()),
            ("td_attributes", body.td_attributes.hex()),
            ("xfam", body.xfam.hex()),
            ("mr_owner", body.mr_owner.hex()),
            ("mr_owner_config", body.mr_owner_config.hex()),
        ]
        if isinstance(body, TdReport15):
            details += [("tee_tcb_svn2", body.tee_tcb_svn2.hex()), ("mr_servicetd", body.mr_servicetd.hex())]
    else:
        measurement, signer, host_data, rtmrs = body.mr_enclave, body.mr_signer, None, ()
        tcb += [("isv_prod_id", body.isv_prod_id), ("isv_svn", body.isv_svn), ("config_svn", body.config_svn)]
        details += [
            ("attributes", body.attributes.hex()),
            ("misc_select", f"{body.misc_select:08x}"),
            ("config_id", body.config_id.hex()),
            ("isv_ext_prod_id", body.isv_ext_prod_id.hex()),
            ("isv_family_id", body.isv_family_id.hex()),
        ]
    tcb += [("qe_isv_svn", q.qe_report.isv_svn), ("pce_svn", ext.pce_svn)]
    tcb += [(f"sgx_tcb_comp_{i + 1:02d}", v) for i, v in enumerate(ext.tcb_components)]
    if platform is not None and col is not None:
        details += [
            ("tcb_date", platform.tcb_date),
            ("tcb_evaluation_data_number", str(col.tcb_info.tcb_evaluation_data_number)),
        ]
    return Claims(
        tee=q.tee,
        measurement=measurement,
        report_data=body.report_data,
        debug=body.debug,
        verified_at=now,
        root_fingerprint=fingerprint(anchor),
        simulated=not roots.vendor,
        tcb_status=status,
        advisory_ids=advisories,
        signer=signer,
        host_data=host_data,
        rtmrs=rtmrs,
        tcb=tuple(tcb),
        details=tuple(details),
    )


def _apply_policy(policy: Policy, q: _Quote, claims: Claims) -> None:
    """The appraisal policy. A requirement that cannot apply to this evidence fails rather than being ignored."""
    body = q.body
    td = isinstance(body, TdReport10)
    for name in ("pcrs", "host_data", "min_snp_tcb", "vmpl"):
        if getattr(policy, name) not in (None, ()):
            raise VerificationError("policy", f"the policy sets {name}, which Intel evidence cannot satisfy")
    if policy.measurements and claims.measurement not in policy.measurements:
        what = "MRTD" if td else "MRENCLAVE"
        raise VerificationError("measurement", f"{what} {claims.measurement.hex()} is not an accepted value")
    if policy.mrsigners and (claims.signer is None or claims.signer not in policy.mrsigners):
        signer = claims.signer.hex() if claims.signer else "none (TDX)"
        raise VerificationError("mrsigner", f"MRSIGNER {signer} is not an accepted value")
    for index, value in policy.rtmrs:
        if not td or not 0 <= index < 4:
            raise VerificationError("rtmr", f"the evidence has no RTMR{index}")
        if claims.rtmrs[index] != value:
            raise VerificationError("rtmr", f"RTMR{index} is {claims.rtmrs[index].hex()}, not {value.hex()}")
    if policy.report_data is not None:
        wanted = policy.report_data.ljust(64, b"\x00") if len(policy.report_data) < 64 else policy.report_data
        if claims.report_data != wanted:
            raise VerificationError("report-data", "REPORTDATA does not carry the expected binding")
    if policy.mr_config_id is not None:
        have = body.mr_config_id if isinstance(body, TdReport10) else body.config_id
        if have != policy.mr_config_id:
            raise VerificationError("mr-config-id", f"{'MRCONFIGID' if td else 'CONFIGID'} {have.hex()} differs")
    if policy.min_isv_svn is not None:
        if isinstance(body, TdReport10):
            raise VerificationError("isv-svn", "a TD has no ISVSVN")
        if body.isv_svn < policy.min_isv_svn:
            raise VerificationError("isv-svn", f"ISVSVN {body.isv_svn} is below {policy.min_isv_svn}")
    if claims.tcb_status is not None and claims.tcb_status not in policy.accepted_tcb_statuses:
        advisories = ", ".join(claims.advisory_ids) or "none"
        raise VerificationError(
            "tcb-status", f"TCB status {claims.tcb_status} is not accepted (advisories: {advisories})"
        )
