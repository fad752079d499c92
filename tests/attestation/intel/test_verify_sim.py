"""Simulated Intel evidence: accepted only with the simulated root, and every check reached and failing by name."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attestation.errors import FormatError, VerificationError
from attestation.formats.intel_common import OpaqueCertificationData
from attestation.formats.sgx import SgxQuoteV3, parse_quote
from attestation.formats.tdx import TD_ATTR_SEPT_VE_DISABLE, TdReport15, TdxQuote
from attestation.roots import fingerprint, pinned
from attestation.tee.sim_intel import SimIntelPki, sgx_extension_value
from attestation.verify import verify_evidence
from attestation.verify.claims import Claims
from attestation.verify.intel import verify_intel
from attestation.verify.intel_collateral import merge_statuses, parse_pck_extension
from attestation.verify.policy import Policy
from tests.attestation.intel.conftest import CHAIN_ONLY, SIM_NOW, SIM_START
from tests.attestation.intel.helpers import crl, first_level, resign_collateral, resign_quote, with_body, with_header

MRENCLAVE = hashlib.sha256(b"enclave").digest()
MRSIGNER = hashlib.sha256(b"signer").digest()
MRTD = hashlib.sha384(b"td").digest()
RTMRS = tuple(hashlib.sha384(bytes([i])).digest() for i in range(4))


def _verify(pki: SimIntelPki, quote: bytes, kind: str, *, collateral: str | bool | None = True,
            policy: Policy | None = None, **kw: Any) -> Claims:
    col = pki.collateral(kind) if collateral is True else collateral
    return verify_intel(quote, now=kw.get("now", SIM_NOW), policy=policy, roots=pki.roots(), collateral=col or None)


def _fails(pki: SimIntelPki, quote: bytes, kind: str, **kw: Any) -> str:
    with pytest.raises(VerificationError) as info:
        _verify(pki, quote, kind, **kw)
    return info.value.check


@pytest.fixture(scope="module")
def sgx(sim_pki: SimIntelPki) -> bytes:
    return sim_pki.sgx_quote(b"nonce", MRENCLAVE, MRSIGNER, isv_svn=3, isv_prod_id=7)


@pytest.fixture(scope="module")
def tdx(sim_pki: SimIntelPki) -> bytes:
    return sim_pki.tdx_quote(b"nonce", MRTD, mrconfigid=b"\x05" * 48, rtmrs=RTMRS)  # type: ignore[arg-type]


# --- the PKI ------------------------------------------------------------------------------------------------------


def test_load_or_create_reuses_the_files(tmp_path: Path) -> None:
    first = SimIntelPki.load_or_create(tmp_path, not_before=SIM_START)
    again = SimIntelPki.load_or_create(tmp_path)
    assert fingerprint(again.root) == fingerprint(first.root)
    assert again.collateral("tdx") == first.collateral("tdx") and again.platform == first.platform
    assert first.root_path().read_bytes() == first.root_pem() == again.root_pem()
    keys = sorted(p.name for p in first.directory.glob("*.key"))
    assert keys == ["pck.key", "pck_ca.key", "qe_attestation.key", "root_ca.key", "tcb_signing.key"]
    for name in keys:
        assert stat.S_IMODE(os.stat(first.directory / name).st_mode) == 0o600
    assert not list(tmp_path.glob(".intel-tmp-*"))
    # a quote made after reloading verifies with the first instance's root
    quote = again.sgx_quote(b"x", MRENCLAVE, MRSIGNER)
    assert _verify(first, quote, "sgx").tcb_status == "UpToDate"


def test_certificates(sim_pki: SimIntelPki) -> None:
    for cert in (sim_pki.root, sim_pki.pck_ca, sim_pki.pck, sim_pki.tcb_signing):
        assert cert.serial_number >= 1
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert cert.not_valid_before_utc == SIM_START
    for ca in (sim_pki.root, sim_pki.pck_ca):
        ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.key_cert_sign and ku.crl_sign
    ext = parse_pck_extension(sim_pki.pck)
    assert ext.fmspc.hex() == sim_pki.platform["fmspc"] and ext.pce_svn == sim_pki.platform["pce_svn"]
    assert list(ext.tcb_components) == sim_pki.platform["tcb_components"] and ext.sgx_type == 1
    assert dict(ext.configuration) == {"dynamicPlatform": False, "cachedKeys": False, "SMTEnabled": False}


# --- accepted with the simulated root, refused with the pinned one ------------------------------------------------


def test_sgx_quote_verifies(sim_pki: SimIntelPki, sgx: bytes) -> None:
    claims = _verify(sim_pki, sgx, "sgx")
    assert claims.tee == "sgx" and claims.simulated is True
    assert claims.measurement == MRENCLAVE and claims.signer == MRSIGNER
    assert claims.report_data == b"nonce".ljust(64, b"\x00")
    assert claims.tcb_status == "UpToDate" and claims.advisory_ids == () and not claims.debug
    assert claims.root_fingerprint == fingerprint(sim_pki.root)
    assert dict(claims.tcb)["isv_svn"] == 3 and dict(claims.tcb)["isv_prod_id"] == 7
    assert verify_evidence(sgx, now=SIM_NOW, roots=sim_pki.roots(), collateral=sim_pki.collateral("sgx")) == claims


@pytest.mark.parametrize(("version", "body_type"), [(4, 2), (5, 2), (5, 3)])
def test_tdx_quote_verifies(sim_pki: SimIntelPki, version: int, body_type: int) -> None:
    quote = sim_pki.tdx_quote(b"n", MRTD, mrconfigid=b"\x05" * 48, rtmrs=RTMRS, version=version,  # type: ignore[arg-type]
                              body_type=body_type)
    claims = _verify(sim_pki, quote, "tdx")
    assert claims.tee == "tdx" and claims.simulated and claims.measurement == MRTD
    assert claims.rtmrs == RTMRS and claims.host_data == b"\x05" * 48 and claims.signer is None
    assert claims.tcb_status == "UpToDate"
    assert dict(claims.details)["quote_version"] == str(version)
    assert ("mr_servicetd" in dict(claims.details)) == (body_type == 3)


def test_v5_sgx_body_verifies_as_sgx(sim_pki: SimIntelPki, sgx: bytes, tdx: bytes) -> None:
    """A v5 quote with an SGX enclave report (TEE type 0) is an SGX quote: QE Identity "QE", TCB Info "SGX"."""
    s, t = parse_quote(sgx), parse_quote(tdx)
    assert isinstance(s, SgxQuoteV3) and isinstance(t, TdxQuote)
    v5 = TdxQuote(dataclasses.replace(s.header, version=5), s.body, t.signature_data)
    # the TDX QE report in `t` is the TD_QE's: with SGX collateral the QE identity does not match
    assert _fails(sim_pki, resign_quote(sim_pki, v5), "sgx") == "qe-identity"
    claims = _verify(sim_pki, resign_quote(sim_pki, v5), "sgx", collateral=None, policy=CHAIN_ONLY)
    assert claims.tee == "sgx" and claims.measurement == MRENCLAVE


@pytest.mark.parametrize("kind", ["sgx", "tdx"])
def test_simulated_evidence_is_refused_by_default(sim_pki: SimIntelPki, sgx: bytes, tdx: bytes, kind: str) -> None:
    quote = sgx if kind == "sgx" else tdx
    with pytest.raises(VerificationError) as info:
        verify_evidence(quote, now=SIM_NOW, collateral=sim_pki.collateral(kind))
    assert info.value.check == "pck-chain"
    with pytest.raises(VerificationError) as info:
        verify_intel(quote, now=SIM_NOW, roots=pinned(), policy=CHAIN_ONLY)
    assert info.value.check == "pck-chain"


@pytest.mark.parametrize("kind", ["sgx", "tdx"])
def test_every_tampered_byte_is_refused(sim_pki: SimIntelPki, sgx: bytes, tdx: bytes, kind: str) -> None:
    quote = sgx if kind == "sgx" else tdx
    collateral = sim_pki.collateral(kind)
    seen = set()
    for i in range(len(quote)):
        data = bytearray(quote)
        data[i] ^= 0x01
        with pytest.raises((VerificationError, FormatError)) as info:
            verify_intel(bytes(data), now=SIM_NOW, roots=sim_pki.roots(), collateral=collateral)
        seen.add(getattr(info.value, "check", "format"))
    assert {"quote-signature", "qe-report-signature", "qe-report-binding", "pck-chain", "format"} <= seen


def test_quote_header_checks(sim_pki: SimIntelPki, sgx: bytes) -> None:
    assert _fails(sim_pki, with_header(sim_pki, sgx, att_key_type=3), "sgx") == "quote-header"
    assert _fails(sim_pki, with_header(sim_pki, sgx, qe_vendor_id=bytes(16)), "sgx") == "quote-header"


def test_certification_data_must_carry_the_pck_chain(sim_pki: SimIntelPki, sgx: bytes, tdx: bytes) -> None:
    q = parse_quote(sgx)
    assert isinstance(q, SgxQuoteV3)
    other = dataclasses.replace(q.signature_data, certification_data=OpaqueCertificationData(4, b"ppid"))
    assert _fails(sim_pki, dataclasses.replace(q, signature_data=other).serialize(), "sgx") == "certification-data"
    t = parse_quote(tdx)
    direct = dataclasses.replace(t.signature_data, certification_data=sim_pki.pck_chain())  # type 5, no QE report
    assert _fails(sim_pki, dataclasses.replace(t, signature_data=direct).serialize(), "tdx") == "certification-data"


# --- chain, CRLs, dates ---------------------------------------------------------------------------------------


def test_revocation(sim_pki: SimIntelPki, sgx: bytes) -> None:
    start = SIM_START
    revoked_leaf = crl(sim_pki, "pck_ca", (sim_pki.pck,), start=start)
    assert _fails(sim_pki, sgx, "sgx", collateral=resign_collateral(sim_pki, "sgx", pck_crl=revoked_leaf)) == "pck-crl"
    revoked_ca = crl(sim_pki, "root", (sim_pki.pck_ca,), start=start)
    assert _fails(sim_pki, sgx, "sgx", collateral=resign_collateral(sim_pki, "sgx", root_crl=revoked_ca)) == "root-crl"
    revoked_tcb = crl(sim_pki, "root", (sim_pki.tcb_signing,), start=start)
    assert _fails(sim_pki, sgx, "sgx", collateral=resign_collateral(sim_pki, "sgx", root_crl=revoked_tcb)) == "root-crl"
    wrong_signer = crl(sim_pki, "pck_ca", start=start, signer="root")
    assert _fails(sim_pki, sgx, "sgx", collateral=resign_collateral(sim_pki, "sgx", pck_crl=wrong_signer)) == "pck-crl"
    # revoking something else changes nothing
    other = crl(sim_pki, "pck_ca", (sim_pki.tcb_signing,), start=start)
    assert _verify(sim_pki, sgx, "sgx", collateral=resign_collateral(sim_pki, "sgx", pck_crl=other)).tcb_status


def test_dates(sim_pki: SimIntelPki, sgx: bytes) -> None:
    before = SIM_START - timedelta(seconds=1)
    assert _fails(sim_pki, sgx, "sgx", now=before) == "root-crl"
    assert _fails(sim_pki, sgx, "sgx", now=before, collateral=None, policy=CHAIN_ONLY) == "pck-chain"
    assert _fails(sim_pki, sgx, "sgx", now=SIM_START + timedelta(days=3651)) == "root-crl"

    def expire(obj: dict[str, Any]) -> None:
        obj["nextUpdate"] = "2026-05-31T00:00:00Z"

    assert _fails(sim_pki, sgx, "sgx", collateral=resign_collateral(sim_pki, "sgx", tcb_info=expire)) == (
        "tcb-info-validity"
    )
    assert _fails(sim_pki, sgx, "sgx", collateral=resign_collateral(sim_pki, "sgx", qe_identity=expire)) == (
        "qe-identity-validity"
    )


def test_pck_extension_required(sim_pki: SimIntelPki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intel SGX PCK Certificate")])
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(SIM_START).not_valid_after(SIM_NOW)
    )
    bare = builder.sign(key, hashes.SHA256())
    with pytest.raises(VerificationError) as info:
        parse_pck_extension(bare)
    assert info.value.check == "pck-extension"
    oid = x509.ObjectIdentifier("1.2.840.113741.1.13.1")
    value = sgx_extension_value(ppid=bytes(16), components=(1,) * 16, pce_svn=1, cpu_svn=bytes(16), pce_id=bytes(2),
                                fmspc=bytes(6), sgx_type=0)
    for broken in (value[:-3], value.replace(bytes([0x04, 0x06]), bytes([0x04, 0x05]), 1), b"\x30\x00", b"\x05\x00"):
        cert = builder.add_extension(x509.UnrecognizedExtension(oid, broken), critical=False).sign(key, hashes.SHA256())
        with pytest.raises(VerificationError) as info:
            parse_pck_extension(cert)
        assert info.value.check == "pck-extension"
    good = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False).sign(key, hashes.SHA256())
    assert parse_pck_extension(good).tcb_components == (1,) * 16


# --- QE identity, TCB levels, statuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("mrsigner", "00" * 32), ("isvprodid", 3), ("miscselect", "00000001"),
     ("attributes", "13000000000000000000000000000000")],
)
def test_qe_identity_mismatch(sim_pki: SimIntelPki, sgx: bytes, field: str, value: object) -> None:
    col = resign_collateral(sim_pki, "sgx", qe_identity=lambda o: o.update({field: value}))
    assert _fails(sim_pki, sgx, "sgx", collateral=col) == "qe-identity"


def test_qe_tcb(sim_pki: SimIntelPki, sgx: bytes) -> None:
    def newer_qe(obj: dict[str, Any]) -> None:
        first_level(obj)["tcb"]["isvsvn"] = 99  # the QE (ISVSVN 8) falls to the OutOfDate level

    col = resign_collateral(sim_pki, "sgx", qe_identity=newer_qe)
    claims = _verify(sim_pki, sgx, "sgx", collateral=col, policy=Policy(accepted_tcb_statuses=frozenset({"OutOfDate"})))
    assert claims.tcb_status == "OutOfDate" and claims.advisory_ids == ("INTEL-SA-00000",)
    assert _fails(sim_pki, sgx, "sgx", collateral=col) == "tcb-status"

    def no_level(obj: dict[str, Any]) -> None:
        for level in obj["tcbLevels"]:
            level["tcb"]["isvsvn"] = 99

    assert _fails(sim_pki, sgx, "sgx", collateral=resign_collateral(sim_pki, "sgx", qe_identity=no_level)) == "qe-tcb"


@pytest.mark.parametrize(
    ("status", "advisories", "accepted"),
    [
        ("SWHardeningNeeded", ["INTEL-SA-00615"], True),
        ("ConfigurationNeeded", [], True),
        ("ConfigurationAndSWHardeningNeeded", ["INTEL-SA-00289", "INTEL-SA-00615"], True),
        ("OutOfDate", ["INTEL-SA-00828"], False),
        ("OutOfDateConfigurationNeeded", ["INTEL-SA-00828"], False),
    ],
)
def test_platform_status(sim_pki: SimIntelPki, sgx: bytes, status: str, advisories: list[str], accepted: bool) -> None:
    def set_status(obj: dict[str, Any]) -> None:
        first_level(obj).update(tcbStatus=status, advisoryIDs=advisories)

    col = resign_collateral(sim_pki, "sgx", tcb_info=set_status)
    if accepted:
        claims = _verify(sim_pki, sgx, "sgx", collateral=col)
        assert claims.tcb_status == status and claims.advisory_ids == tuple(advisories)
    else:
        assert _fails(sim_pki, sgx, "sgx", collateral=col) == "tcb-status"
        relaxed = Policy(accepted_tcb_statuses=frozenset({status}))
        assert _verify(sim_pki, sgx, "sgx", collateral=col, policy=relaxed).tcb_status == status


def test_revoked_is_never_accepted(sim_pki: SimIntelPki, sgx: bytes) -> None:
    col = resign_collateral(sim_pki, "sgx", tcb_info=lambda o: first_level(o).update(tcbStatus="Revoked"))
    assert _fails(sim_pki, sgx, "sgx", collateral=col, policy=Policy(accepted_tcb_statuses=frozenset({"Revoked"}))) == (
        "tcb-status"
    )


def test_unknown_status_is_malformed(sim_pki: SimIntelPki, sgx: bytes) -> None:
    col = resign_collateral(sim_pki, "sgx", tcb_info=lambda o: first_level(o).update(tcbStatus="Fine"))
    assert _fails(sim_pki, sgx, "sgx", collateral=col) == "tcb-info"
    # an enclave identity level is UpToDate, OutOfDate or Revoked only
    col = resign_collateral(sim_pki, "sgx", qe_identity=lambda o: first_level(o).update(tcbStatus="SWHardeningNeeded"))
    assert _fails(sim_pki, sgx, "sgx", collateral=col) == "qe-identity"


def test_platform_level_matching(sim_pki: SimIntelPki, sgx: bytes) -> None:
    def raise_component(obj: dict[str, Any]) -> None:
        first_level(obj)["tcb"]["sgxtcbcomponents"][6]["svn"] = 13  # the platform has 12: falls to OutOfDate

    col = resign_collateral(sim_pki, "sgx", tcb_info=raise_component)
    assert _fails(sim_pki, sgx, "sgx", collateral=col) == "tcb-status"

    def raise_pcesvn(obj: dict[str, Any]) -> None:
        for level in obj["tcbLevels"]:
            level["tcb"]["pcesvn"] = 14

    col = resign_collateral(sim_pki, "sgx", tcb_info=raise_pcesvn)
    assert _fails(sim_pki, sgx, "sgx", collateral=col) == "tcb-level"
    col = resign_collateral(sim_pki, "sgx", tcb_info=lambda o: o.update(fmspc="00906ED50001"))
    assert _fails(sim_pki, sgx, "sgx", collateral=col) == "fmspc"
    col = resign_collateral(sim_pki, "sgx", tcb_info=lambda o: o.update(pceId="0100"))
    assert _fails(sim_pki, sgx, "sgx", collateral=col) == "fmspc"
    col = resign_collateral(sim_pki, "sgx", tcb_info=lambda o: o.update(version=2))
    assert _fails(sim_pki, sgx, "sgx", collateral=col) == "tcb-info"


def test_tdx_tcb(sim_pki: SimIntelPki, tdx: bytes) -> None:
    def raise_tdx_component(obj: dict[str, Any]) -> None:
        first_level(obj)["tcb"]["tdxtcbcomponents"][2]["svn"] = 3  # TEE_TCB_SVN[2] is 2

    assert _fails(sim_pki, tdx, "tdx", collateral=resign_collateral(sim_pki, "tdx", tcb_info=raise_tdx_component)) == (
        "tcb-status"
    )

    def no_module_identity(obj: dict[str, Any]) -> None:
        obj["tdxModuleIdentities"][0]["id"] = "TDX_02"

    col = resign_collateral(sim_pki, "tdx", tcb_info=no_module_identity)
    assert _fails(sim_pki, tdx, "tdx", collateral=col) == "tdx-module"

    def other_signer(obj: dict[str, Any]) -> None:
        obj["tdxModuleIdentities"][0]["mrsigner"] = "11" * 48

    assert _fails(sim_pki, tdx, "tdx", collateral=resign_collateral(sim_pki, "tdx", tcb_info=other_signer)) == (
        "tdx-module"
    )

    def other_generic_signer(obj: dict[str, Any]) -> None:
        obj["tdxModule"]["mrsigner"] = "11" * 48  # not used: the module's TDX_01 identity applies

    assert _verify(sim_pki, tdx, "tdx", collateral=resign_collateral(sim_pki, "tdx", tcb_info=other_generic_signer))

    def seam_attributes(obj: dict[str, Any]) -> None:
        obj["tdxModuleIdentities"][0]["attributes"] = "0100000000000000"

    col = resign_collateral(sim_pki, "tdx", tcb_info=seam_attributes)
    assert _fails(sim_pki, tdx, "tdx", collateral=col) == "tdx-module"

    def old_module(obj: dict[str, Any]) -> None:
        levels = obj["tdxModuleIdentities"][0]["tcbLevels"]
        levels[0]["tcb"]["isvsvn"] = 4  # the module has SVN 3: falls to the OutOfDate level
        levels[1]["advisoryIDs"] = ["INTEL-SA-01079"]

    col = resign_collateral(sim_pki, "tdx", tcb_info=old_module)
    claims = _verify(sim_pki, tdx, "tdx", collateral=col, policy=Policy(accepted_tcb_statuses=frozenset({"OutOfDate"})))
    assert claims.tcb_status == "OutOfDate" and claims.advisory_ids == ("INTEL-SA-01079",)

    def no_module_level(obj: dict[str, Any]) -> None:
        obj["tdxModuleIdentities"][0]["tcbLevels"] = [{"tcb": {"isvsvn": 9}, "tcbDate": "2024-01-01T00:00:00Z",
                                                      "tcbStatus": "UpToDate"}]

    col = resign_collateral(sim_pki, "tdx", tcb_info=no_module_level)
    assert _fails(sim_pki, tdx, "tdx", collateral=col) == "tdx-module"
    # a module of major version 0 needs no module identity, and is held to the generic tdxModule
    v0 = with_body(sim_pki, tdx, tee_tcb_svn=bytes([3, 0, 2]) + bytes(13))
    assert _verify(sim_pki, v0, "tdx", collateral=resign_collateral(sim_pki, "tdx", tcb_info=no_module_identity))
    col = resign_collateral(sim_pki, "tdx", tcb_info=other_generic_signer)
    assert _fails(sim_pki, v0, "tdx", collateral=col) == "tdx-module"


def test_merge_statuses() -> None:
    assert merge_statuses("UpToDate") == "UpToDate"
    assert merge_statuses("UpToDate", "SWHardeningNeeded") == "SWHardeningNeeded"
    assert merge_statuses("ConfigurationNeeded", "SWHardeningNeeded") == "ConfigurationAndSWHardeningNeeded"
    assert merge_statuses("ConfigurationNeeded", "OutOfDate") == "OutOfDateConfigurationNeeded"
    assert merge_statuses("SWHardeningNeeded", "OutOfDate") == "OutOfDate"
    assert merge_statuses("OutOfDateConfigurationNeeded", "UpToDate") == "OutOfDateConfigurationNeeded"
    assert merge_statuses("UpToDate", "Revoked", "OutOfDate") == "Revoked"


# --- debug, TD attributes, policy ---------------------------------------------------------------------------------


def test_debug(sim_pki: SimIntelPki) -> None:
    sgx = sim_pki.sgx_quote(b"", MRENCLAVE, MRSIGNER, debug=True)
    assert _fails(sim_pki, sgx, "sgx") == "debug"
    assert _verify(sim_pki, sgx, "sgx", policy=Policy(allow_debug=True)).debug is True
    tdx = sim_pki.tdx_quote(b"", MRTD, debug=True)
    assert _fails(sim_pki, tdx, "tdx") == "debug"
    assert _verify(sim_pki, tdx, "tdx", policy=Policy(allow_debug=True)).debug is True


def test_td_attributes(sim_pki: SimIntelPki, tdx: bytes) -> None:
    assert _fails(sim_pki, sim_pki.tdx_quote(b"", MRTD, td_attributes=0), "tdx") == "td-attributes"
    reserved = sim_pki.tdx_quote(b"", MRTD, td_attributes=TD_ATTR_SEPT_VE_DISABLE | 0x04)
    assert _fails(sim_pki, reserved, "tdx") == "td-attributes"
    pks = sim_pki.tdx_quote(b"", MRTD, td_attributes=TD_ATTR_SEPT_VE_DISABLE | 1 << 30)
    assert _verify(sim_pki, pks, "tdx").tcb_status == "UpToDate"
    v5 = sim_pki.tdx_quote(b"", MRTD, version=5)
    assert isinstance(parse_quote(v5).body, TdReport15)
    assert _fails(sim_pki, with_body(sim_pki, v5, mr_servicetd=b"\x01" * 48), "tdx") == "mr-servicetd"


def test_debug_qe_is_refused_even_without_collateral(sim_pki: SimIntelPki, sgx: bytes) -> None:
    """A debug QE could sign anything; its report is signed by the PCK key, so only a PCE bug would produce one:
    tested by re-signing the QE report with the simulated PCK key."""
    from attestation.tee.sim_intel import sign_raw

    q = parse_quote(sgx)
    assert isinstance(q, SgxQuoteV3)
    attrs = bytearray(q.signature_data.qe_report.attributes)
    attrs[0] |= 0x02
    report = dataclasses.replace(q.signature_data.qe_report, attributes=bytes(attrs))
    sig = dataclasses.replace(q.signature_data, qe_report=report,
                              qe_report_signature=sign_raw(sim_pki.pck_key, report.serialize()))
    data = dataclasses.replace(q, signature_data=sig).serialize()
    assert _fails(sim_pki, data, "sgx", collateral=None, policy=CHAIN_ONLY) == "qe-identity"
    assert _fails(sim_pki, data, "sgx") == "qe-identity"  # the masked attributes differ too


def test_policy(sim_pki: SimIntelPki, sgx: bytes, tdx: bytes) -> None:
    good_sgx = Policy(measurements=(MRENCLAVE,), mrsigners=(MRSIGNER,), report_data=b"nonce", min_isv_svn=3)
    assert _verify(sim_pki, sgx, "sgx", policy=good_sgx).measurement == MRENCLAVE
    for policy, check in (
        (Policy(measurements=(MRSIGNER,)), "measurement"),
        (Policy(mrsigners=(MRENCLAVE,)), "mrsigner"),
        (Policy(report_data=b"nonce2"), "report-data"),
        (Policy(report_data=b"nonce".ljust(64, b"\x01")), "report-data"),
        (Policy(min_isv_svn=4), "isv-svn"),
        (Policy(host_data=bytes(32)), "policy"),
        (Policy(pcrs=((0, bytes(48)),)), "policy"),
    ):
        assert _fails(sim_pki, sgx, "sgx", policy=policy) == check
    good_tdx = Policy(measurements=(MRTD,), rtmrs=((3, RTMRS[3]), (0, RTMRS[0])), mr_config_id=b"\x05" * 48,
                      report_data=b"nonce".ljust(64, b"\x00"))
    assert _verify(sim_pki, tdx, "tdx", policy=good_tdx).rtmrs == RTMRS
    for policy, check in (
        (Policy(rtmrs=((1, RTMRS[2]),)), "rtmr"),
        (Policy(mr_config_id=bytes(48)), "mr-config-id"),
        (Policy(measurements=(MRTD[:-1],)), "measurement"),
    ):
        assert _fails(sim_pki, tdx, "tdx", policy=policy) == check
    # without collateral: allowed only when the policy says so, and then no TCB status
    assert _fails(sim_pki, sgx, "sgx", collateral=None) == "tcb-required"
    assert _verify(sim_pki, sgx, "sgx", collateral=None, policy=CHAIN_ONLY).tcb_status is None
