"""The independent verifier: dcap-qvl (Phala, Rust, from PyPI) accepts the simulated quotes and collateral with the
simulated root, refuses them once tampered, and reaches the same verdict as ours on re-signed variants.

`dcap_qvl.verify_with_root_ca(raw_quote, collateral, root_ca_der, now_secs)` (dcap-qvl 0.7), `collateral` a
`QuoteCollateralV3` read from our JSON with `from_json`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from attestation.errors import FormatError, VerificationError
from attestation.formats.sgx import parse_quote
from attestation.formats.tdx import TdReport10, TdReport15
from attestation.tee.sim_intel import SimIntelPki
from attestation.verify.intel import verify_intel
from attestation.verify.policy import Policy
from tests.attestation.intel.conftest import SIM_NOW, Sample
from tests.attestation.intel.helpers import first_level, resign_collateral, with_body

NOW = int(SIM_NOW.timestamp())
EVERY_STATUS = frozenset(
    {"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate",
     "OutOfDateConfigurationNeeded", "Revoked"}
)


def _qvl(qvl: ModuleType, pki: SimIntelPki, quote: bytes, collateral: str, now: int = NOW) -> tuple[str, list[str]]:
    report = qvl.verify_with_root_ca(quote, qvl.QuoteCollateralV3.from_json(collateral), pki.root_der(), now)
    return report.status, list(report.advisory_ids)


def _ours(pki: SimIntelPki, quote: bytes, collateral: str) -> tuple[str, list[str]]:
    claims = verify_intel(quote, now=SIM_NOW, roots=pki.roots(), collateral=collateral,
                          policy=Policy(accepted_tcb_statuses=EVERY_STATUS))
    return claims.tcb_status or "", list(claims.advisory_ids)


QUOTES: dict[str, Callable[[SimIntelPki], bytes]] = {
    "sgx-v3": lambda p: p.sgx_quote(b"hello", b"\x11" * 32, b"\x22" * 32, isv_svn=2),
    "tdx-v4": lambda p: p.tdx_quote(b"hello", b"\x33" * 48),
    "tdx-v5-td10": lambda p: p.tdx_quote(b"hello", b"\x33" * 48, version=5, body_type=2),
    "tdx-v5-td15": lambda p: p.tdx_quote(b"hello", b"\x33" * 48, version=5, body_type=3),
}


@pytest.mark.parametrize("name", list(QUOTES))
def test_simulated_quotes_pass_dcap_qvl(dcap_qvl: ModuleType, sim_pki: SimIntelPki, name: str) -> None:
    kind = name[:3]
    quote = QUOTES[name](sim_pki)
    collateral = sim_pki.collateral(kind)
    assert _qvl(dcap_qvl, sim_pki, quote, collateral) == ("UpToDate", [])
    assert _ours(sim_pki, quote, collateral) == ("UpToDate", [])
    _same_parse(dcap_qvl, quote)


@pytest.mark.parametrize("name", list(QUOTES))
def test_tampered_quotes_fail_dcap_qvl(dcap_qvl: ModuleType, sim_pki: SimIntelPki, name: str) -> None:
    kind = name[:3]
    quote = QUOTES[name](sim_pki)
    collateral = sim_pki.collateral(kind)
    signed = 432 if kind == "sgx" else 48 + (6 if "v5" in name else 0) + (648 if "td15" in name else 584)
    for offset in (signed - 64, signed - 1, signed + 4 + 10, signed + 4 + 130, 12, 47):  # REPORTDATA, sig, ..., header
        data = bytearray(quote)
        data[offset] ^= 0x01
        with pytest.raises(ValueError):
            _qvl(dcap_qvl, sim_pki, bytes(data), collateral)
        with pytest.raises((VerificationError, FormatError)):
            _ours(sim_pki, bytes(data), collateral)


def _same_parse(qvl: ModuleType, data: bytes) -> None:
    """dcap-qvl's parser reads the same fields as ours."""
    theirs, ours = qvl.parse_quote(data), parse_quote(data)
    assert theirs.header.version == ours.header.version and theirs.header.tee_type == ours.header.tee_type
    assert bytes(theirs.header.qe_vendor_id) == ours.header.qe_vendor_id
    assert bytes(theirs.header.user_data) == ours.header.user_data
    assert theirs.is_tdx() == (ours.tee == "tdx")
    report, body = theirs.report, ours.body
    assert bytes(report.report_data) == body.report_data
    if isinstance(body, TdReport10):
        assert bytes(report.mr_td) == body.mr_td and bytes(report.tee_tcb_svn) == body.tee_tcb_svn
        assert [bytes(report.rt_mr0), bytes(report.rt_mr1), bytes(report.rt_mr2), bytes(report.rt_mr3)] == list(
            body.rtmrs
        )
        assert bytes(report.td_attributes) == body.td_attributes and bytes(report.mr_config_id) == body.mr_config_id
        if isinstance(body, TdReport15):
            assert bytes(report.mr_service_td) == body.mr_servicetd
    else:
        assert bytes(report.mr_enclave) == body.mr_enclave and bytes(report.mr_signer) == body.mr_signer
        assert bytes(report.attributes) == body.attributes and bytes(report.cpu_svn) == body.cpu_svn


@pytest.mark.parametrize("name", ["sgx_quote", "tdx_quote", "tdx-quote.hex", "tdx_prod_quote_SPR_E4",
                                  "cos-113-tdx-quote"])
def test_dcap_qvl_parses_the_samples_like_us(dcap_qvl: ModuleType, intel_samples: dict[str, Sample],
                                               name: str) -> None:
    _same_parse(dcap_qvl, intel_samples[name].quote)


def test_dcap_qvl_refuses_the_simulation_with_the_real_root(dcap_qvl: ModuleType, sim_pki: SimIntelPki) -> None:
    quote = QUOTES["sgx-v3"](sim_pki)
    with pytest.raises(ValueError):
        dcap_qvl.verify(quote, dcap_qvl.QuoteCollateralV3.from_json(sim_pki.collateral("sgx")), NOW)
    late = int((SIM_NOW + timedelta(days=3700)).timestamp())  # after the collateral's 10 years
    with pytest.raises(ValueError):
        _qvl(dcap_qvl, sim_pki, quote, sim_pki.collateral("sgx"), late)


def _status(status: str, advisories: list[str]) -> Callable[[dict[str, Any]], None]:
    return lambda obj: first_level(obj).update(tcbStatus=status, advisoryIDs=advisories)


def _old_qe(obj: dict[str, Any]) -> None:
    first_level(obj)["tcb"]["isvsvn"] = 99


def _old_module(obj: dict[str, Any]) -> None:
    levels = obj["tdxModuleIdentities"][0]["tcbLevels"]
    levels[0]["tcb"]["isvsvn"] = 4
    levels[1]["advisoryIDs"] = ["INTEL-SA-01079"]


def _old_tdx_component(obj: dict[str, Any]) -> None:
    first_level(obj)["tcb"]["tdxtcbcomponents"][2]["svn"] = 3


VARIANTS: dict[str, tuple[str, dict[str, Callable[[dict[str, Any]], None]]]] = {
    "sw-hardening": ("sgx", {"tcb_info": _status("SWHardeningNeeded", ["INTEL-SA-00615"])}),
    "configuration": ("sgx", {"tcb_info": _status("ConfigurationNeeded", ["INTEL-SA-00289"])}),
    "config-and-sw": ("sgx", {"tcb_info": _status("ConfigurationAndSWHardeningNeeded", ["A", "B"])}),
    "out-of-date": ("sgx", {"tcb_info": _status("OutOfDate", ["INTEL-SA-00828"])}),
    "out-of-date-config": ("tdx", {"tcb_info": _status("OutOfDateConfigurationNeeded", ["C"])}),
    "old-qe": ("sgx", {"qe_identity": _old_qe}),
    "old-qe-config": ("sgx", {"qe_identity": _old_qe, "tcb_info": _status("ConfigurationAndSWHardeningNeeded", ["B"])}),
    "old-td-qe-sw": ("tdx", {"qe_identity": _old_qe, "tcb_info": _status("SWHardeningNeeded", ["B"])}),
    "old-module": ("tdx", {"tcb_info": _old_module}),
    "old-tdx-component": ("tdx", {"tcb_info": _old_tdx_component}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_same_verdict_as_dcap_qvl(dcap_qvl: ModuleType, sim_pki: SimIntelPki, variant: str) -> None:
    """Status merging (platform, QE, TDX module) and advisory lists agree with the independent implementation."""
    kind, mutators = VARIANTS[variant]
    collateral = resign_collateral(sim_pki, kind, **mutators)
    quote = QUOTES["sgx-v3" if kind == "sgx" else "tdx-v4"](sim_pki)
    theirs = _qvl(dcap_qvl, sim_pki, quote, collateral)
    assert theirs[0] != "UpToDate"
    assert _ours(sim_pki, quote, collateral) == theirs


@pytest.mark.parametrize(
    ("variant", "check"),
    [("revoked", "tcb-status"), ("no-module-identity", "tdx-module"), ("no-sept-ve-disable", "td-attributes"),
     ("debug", "debug"), ("service-td", "mr-servicetd"), ("qe-mrsigner", "qe-identity")],
)
def test_both_refuse(dcap_qvl: ModuleType, sim_pki: SimIntelPki, variant: str, check: str) -> None:
    tdx = sim_pki.tdx_quote(b"x", b"\x44" * 48)
    collateral = sim_pki.collateral("tdx")
    if variant == "revoked":
        collateral = resign_collateral(sim_pki, "tdx", tcb_info=_status("Revoked", []))
    elif variant == "no-module-identity":
        collateral = resign_collateral(
            sim_pki, "tdx", tcb_info=lambda o: o["tdxModuleIdentities"][0].update(id="TDX_02")
        )
    elif variant == "no-sept-ve-disable":
        tdx = sim_pki.tdx_quote(b"x", b"\x44" * 48, td_attributes=0)
    elif variant == "debug":
        tdx = sim_pki.tdx_quote(b"x", b"\x44" * 48, debug=True)
    elif variant == "service-td":
        tdx = with_body(sim_pki, sim_pki.tdx_quote(b"x", b"\x44" * 48, version=5), mr_servicetd=b"\x01" * 48)
    elif variant == "qe-mrsigner":
        collateral = resign_collateral(sim_pki, "tdx", qe_identity=lambda o: o.update(mrsigner="00" * 32))
    with pytest.raises(ValueError):
        _qvl(dcap_qvl, sim_pki, tdx, collateral)
    with pytest.raises(VerificationError) as info:
        _ours(sim_pki, tdx, collateral)
    assert info.value.check == check
