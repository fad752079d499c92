"""The real Intel quotes verify with the pinned Intel root inside their windows (README), and fail outside them, or
with altered collateral, naming the check."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from attestation.errors import VerificationError
from attestation.roots import INTEL_SGX_ROOT_SHA256, TrustedRoots, pinned
from attestation.verify import verify_evidence
from attestation.verify.intel import verify_intel
from attestation.verify.intel_collateral import QuoteCollateral
from attestation.verify.policy import Policy
from tests.attestation.intel.conftest import CHAIN_ONLY, Sample, utc


def _check(sample: Sample, *, now: datetime | None = None, policy: Policy | None = None,
           collateral: str | bool | None = True) -> str:
    """The check a verification fails with (asserting that it fails)."""
    col = sample.collateral if collateral is True else collateral
    with pytest.raises(VerificationError) as info:
        verify_intel(sample.quote, now=now or sample.now, policy=policy or sample.policy, roots=pinned(),
                     collateral=col or None)
    return info.value.check


@pytest.mark.parametrize("name", ["sgx_quote", "tdx_quote"])
def test_full_verification_inside_the_window(intel_samples: dict[str, Sample], name: str) -> None:
    s = intel_samples[name]
    claims = verify_evidence(s.quote, now=s.now, collateral=s.collateral)
    assert claims.tee == s.tee
    assert claims.tcb_status == s.status
    assert claims.advisory_ids == s.advisories
    assert claims.root_fingerprint == INTEL_SGX_ROOT_SHA256
    assert claims.simulated is False and claims.debug is False
    assert claims.verified_at == s.now
    details = dict(claims.details)
    tcb = dict(claims.tcb)
    if name == "sgx_quote":
        assert claims.report_data == b"Hello, world!".ljust(64, b"\x00")
        assert claims.measurement.hex().startswith("33d8736d")
        assert claims.signer is not None and claims.signer.hex().startswith("815f42f1")
        assert details["fmspc"] == "00a067110000" and details["pck_ca"] == "processor"
        assert tcb["pce_svn"] == 13 and tcb["qe_isv_svn"] == 10 and tcb["sgx_tcb_comp_01"] == 11
        assert claims.rtmrs == () and claims.host_data is None
    else:
        assert details["fmspc"] == "b0c06f000000" and details["pck_ca"] == "platform"
        assert len(claims.measurement) == 48 and len(claims.rtmrs) == 4 and claims.host_data == bytes(48)
        assert tcb["tee_tcb_svn_00"] == 6 and tcb["tee_tcb_svn_01"] == 1
        assert claims.signer is None


@pytest.mark.parametrize("name", ["sgx_quote", "tdx_quote"])
def test_window_edges(intel_samples: dict[str, Sample], name: str) -> None:
    """The first and last instants of the README window verify."""
    s = intel_samples[name]
    start, end = {
        "sgx_quote": ("2025-06-19T10:56:11", "2025-07-19T10:01:18"),
        "tdx_quote": ("2025-06-19T10:32:27", "2025-07-19T10:00:35"),
    }[name]
    for when in (utc(start), utc(end)):
        assert verify_intel(s.quote, now=when, collateral=s.collateral).tcb_status == s.status


@pytest.mark.parametrize(
    ("name", "when", "check"),
    [
        ("sgx_quote", "2025-06-19T10:56:10", "tcb-info-validity"),  # TCB Info not issued yet
        ("sgx_quote", "2025-07-19T10:01:19", "qe-identity-validity"),  # QE Identity expired first
        ("sgx_quote", "2025-08-01T00:00:00", "tcb-info-validity"),
        ("sgx_quote", "2026-05-01T00:00:00", "root-crl"),  # root CRL expired 2026-04-03
        ("sgx_quote", "2025-03-01T00:00:00", "root-crl"),  # root CRL issued 2025-03-20
        ("tdx_quote", "2025-06-19T10:20:00", "qe-identity-validity"),  # TCB Info issued, QE Identity not yet
        ("tdx_quote", "2025-07-19T10:00:36", "pck-crl"),  # only the PCK CRL has expired
        ("tdx_prod_quote_SPR_E4", "2023-07-18T09:00:00", "tcb-info-validity"),
        ("tdx_prod_quote_SPR_E4", "2023-07-10T00:00:00", "qe-identity-validity"),
        ("tdx_prod_quote_SPR_E4", "2023-06-18T08:42:57", "tcb-info-validity"),
    ],
)
def test_outside_the_window(intel_samples: dict[str, Sample], name: str, when: str, check: str) -> None:
    assert _check(intel_samples[name], now=utc(when)) == check


def test_spr_e4_fails_at_the_tcb_step(intel_samples: dict[str, Sample]) -> None:
    """README: every signature and CRL check passes, then no TCB level matches (TEE_TCB_SVN[2] = 4 < 5)."""
    s = intel_samples["tdx_prod_quote_SPR_E4"]
    with pytest.raises(VerificationError) as info:
        verify_intel(s.quote, now=s.now, collateral=s.collateral)
    assert info.value.check == "tcb-level"
    assert "TEE_TCB_SVN 03000400" in info.value.message


@pytest.mark.parametrize("name", ["tdx-quote.hex", "cos-113-tdx-quote", "sgx_quote", "tdx_quote"])
def test_chain_and_signatures_only(intel_samples: dict[str, Sample], name: str) -> None:
    """No collateral: allowed only by a policy with require_tcb=False; then no TCB status."""
    s = intel_samples[name]
    when = utc("2026-01-01T00:00:00")  # collateral long expired, PCK leaves still valid
    claims = verify_intel(s.quote, now=when, policy=CHAIN_ONLY)
    assert claims.tcb_status is None and claims.advisory_ids == () and claims.tee == s.tee
    assert claims.root_fingerprint == INTEL_SGX_ROOT_SHA256
    with pytest.raises(VerificationError) as info:
        verify_intel(s.quote, now=when)
    assert info.value.check == "tcb-required"


def test_spr_e4_without_collateral_is_refused_for_its_td_attributes(intel_samples: dict[str, Sample]) -> None:
    """Its TDATTRIBUTES are 0x40000000 (PKS only): SEPT_VE_DISABLE is clear, which the rules of spec §2.2 refuse."""
    s = intel_samples["tdx_prod_quote_SPR_E4"]
    assert _check(s, now=utc("2025-01-01T00:00:00"), policy=CHAIN_ONLY, collateral=None) == "td-attributes"


@pytest.mark.parametrize(
    ("name", "when"),
    [("cos-113-tdx-quote", "2024-07-02T12:07:36"), ("tdx-quote.hex", "2031-08-02T11:15:38"),
     ("sgx_quote", "2030-09-20T21:53:44")],
)
def test_pck_leaf_outside_its_validity(intel_samples: dict[str, Sample], name: str, when: str) -> None:
    assert _check(intel_samples[name], now=utc(when), policy=CHAIN_ONLY, collateral=None) == "pck-chain"


def test_naive_now_is_refused(intel_samples: dict[str, Sample]) -> None:
    s = intel_samples["sgx_quote"]
    with pytest.raises(VerificationError) as info:
        verify_intel(s.quote, now=datetime(2025, 6, 25), collateral=s.collateral)
    assert info.value.check == "time"


def test_no_intel_root_trusted(intel_samples: dict[str, Sample]) -> None:
    s = intel_samples["sgx_quote"]
    with pytest.raises(VerificationError) as info:
        verify_intel(s.quote, now=s.now, roots=TrustedRoots(nitro=pinned().nitro, vendor=True), collateral=s.collateral)
    assert info.value.check == "pck-chain"


# --- altered collateral ---------------------------------------------------------------------------------------


def _altered(sample: Sample, **changes: object) -> str:
    obj = json.loads(sample.collateral or "")
    obj.update(changes)
    return json.dumps(obj)


def test_tcb_info_text_is_signed(intel_samples: dict[str, Sample]) -> None:
    s = intel_samples["sgx_quote"]
    obj = json.loads(s.collateral or "")
    upgraded = obj["tcb_info"].replace("ConfigurationAndSWHardeningNeeded", "UpToDate", 1)
    assert _check(s, collateral=_altered(s, tcb_info=upgraded)) == "tcb-info-signature"
    spaced = obj["tcb_info"].replace(",", ", ", 1)  # same JSON value, other bytes
    assert _check(s, collateral=_altered(s, tcb_info=spaced)) == "tcb-info-signature"
    identity = obj["qe_identity"].replace('"isvsvn":8', '"isvsvn":18', 1)
    assert _check(s, collateral=_altered(s, qe_identity=identity)) == "qe-identity-signature"
    sig = bytearray.fromhex(obj["tcb_info_signature"])
    sig[5] ^= 1
    assert _check(s, collateral=_altered(s, tcb_info_signature=sig.hex())) == "tcb-info-signature"


def test_collateral_of_the_other_kind(intel_samples: dict[str, Sample]) -> None:
    sgx, tdx = intel_samples["sgx_quote"], intel_samples["tdx_quote"]
    assert _check(sgx, collateral=tdx.collateral, now=tdx.now) == "tcb-info"
    assert _check(tdx, collateral=sgx.collateral, now=sgx.now) == "tcb-info"


def test_pck_crl_of_another_ca(intel_samples: dict[str, Sample]) -> None:
    """The SGX sample's PCK CRL is the Processor CA's; the TDX quote's leaf is issued by the Platform CA."""
    sgx, tdx = intel_samples["sgx_quote"], intel_samples["tdx_quote"]
    pck_crl = json.loads(sgx.collateral or "")["pck_crl"]
    assert _check(tdx, collateral=_altered(tdx, pck_crl=pck_crl)) == "pck-crl"


def test_root_crl_altered(intel_samples: dict[str, Sample]) -> None:
    s = intel_samples["sgx_quote"]
    crl = bytearray.fromhex(json.loads(s.collateral or "")["root_ca_crl"])
    crl[-3] ^= 1  # inside the signature
    assert _check(s, collateral=_altered(s, root_ca_crl=crl.hex())) == "root-crl"
    assert _check(s, collateral=_altered(s, root_ca_crl="3082")) == "collateral"


def test_signer_chain_must_be_tcb_signing(intel_samples: dict[str, Sample]) -> None:
    """A chain that reaches the root but whose signer is not the TCB Signing certificate (here the PCK CA chain)
    cannot vouch for TCB data."""
    s = intel_samples["sgx_quote"]
    obj = json.loads(s.collateral or "")
    assert _check(s, collateral=_altered(s, tcb_info_issuer_chain=obj["pck_crl_issuer_chain"])) == "tcb-info-chain"
    assert _check(s, collateral=_altered(s, qe_identity_issuer_chain=obj["pck_crl_issuer_chain"])) == (
        "qe-identity-chain"
    )
    assert _check(s, collateral=_altered(s, tcb_info_issuer_chain="junk")) == "tcb-info-chain"


@pytest.mark.parametrize(
    "collateral",
    ["{", "[]", json.dumps({"tcb_info": "x"}), json.dumps({"pck_crl_issuer_chain": 1})],
)
def test_malformed_collateral(intel_samples: dict[str, Sample], collateral: str) -> None:
    assert _check(intel_samples["sgx_quote"], collateral=collateral) == "collateral"


def test_collateral_forms(intel_samples: dict[str, Sample]) -> None:
    """Text, bytes, a mapping or the parsed object; the JSON form round-trips."""
    s = intel_samples["tdx_quote"]
    parsed = QuoteCollateral.from_json(s.collateral or "")
    assert QuoteCollateral.from_json(parsed.to_json()) == parsed
    for form in (s.collateral, (s.collateral or "").encode(), json.loads(s.collateral or ""), parsed):
        assert verify_intel(s.quote, now=s.now, collateral=form).tcb_status == "UpToDate"  # type: ignore[arg-type]


# --- policy on a real sample ----------------------------------------------------------------------------------


def test_policy_on_the_sgx_sample(intel_samples: dict[str, Sample]) -> None:
    s = intel_samples["sgx_quote"]
    claims = verify_intel(s.quote, now=s.now, collateral=s.collateral)
    ok = Policy(
        measurements=(claims.measurement,), mrsigners=(claims.signer or b"",), report_data=b"Hello, world!",
        min_isv_svn=0,
    )
    assert verify_intel(s.quote, now=s.now, policy=ok, collateral=s.collateral) == claims
    for policy, check in (
        (Policy(measurements=(bytes(32),)), "measurement"),
        (Policy(mrsigners=(bytes(32),)), "mrsigner"),
        (Policy(report_data=b"Hello, world?"), "report-data"),
        (Policy(min_isv_svn=1), "isv-svn"),
        (Policy(rtmrs=((0, bytes(48)),)), "rtmr"),
        (Policy(accepted_tcb_statuses=frozenset({"UpToDate"})), "tcb-status"),
        (Policy(vmpl=0), "policy"),
        (Policy(mr_config_id=bytes(48)), "mr-config-id"),
    ):
        assert _check(s, policy=policy) == check, policy
    assert verify_intel(s.quote, now=s.now, policy=Policy(mr_config_id=bytes(64)), collateral=s.collateral)


def test_policy_on_the_tdx_sample(intel_samples: dict[str, Sample]) -> None:
    s = intel_samples["tdx_quote"]
    claims = verify_intel(s.quote, now=s.now, collateral=s.collateral)
    ok = Policy(
        measurements=(claims.measurement,), rtmrs=tuple(enumerate(claims.rtmrs)), report_data=claims.report_data,
        mr_config_id=claims.host_data,
    )
    assert verify_intel(s.quote, now=s.now, policy=ok, collateral=s.collateral) == claims
    for policy, check in (
        (Policy(rtmrs=((2, bytes(48)),)), "rtmr"),
        (Policy(rtmrs=((4, bytes(48)),)), "rtmr"),
        (Policy(mrsigners=(bytes(32),)), "mrsigner"),  # a TD has no MRSIGNER: the requirement cannot hold
        (Policy(min_isv_svn=0), "isv-svn"),
        (Policy(mr_config_id=b"\x01" * 48), "mr-config-id"),
        (Policy(measurements=(claims.measurement[:-1] + b"\x00",)), "measurement"),
    ):
        assert _check(s, policy=policy) == check, policy


def test_dcap_qvl_agrees_on_the_samples(intel_samples: dict[str, Sample], dcap_qvl: object) -> None:
    """The oracle itself, on the real samples: same statuses, same SPR_E4 failure."""
    import dcap_qvl as qvl

    for name in ("sgx_quote", "tdx_quote"):
        s = intel_samples[name]
        report = qvl.verify(s.quote, qvl.QuoteCollateralV3.from_json(s.collateral), int(s.now.timestamp()))
        assert report.status == s.status and tuple(report.advisory_ids) == s.advisories
        late = int((s.now + timedelta(days=60)).timestamp())
        with pytest.raises(ValueError):
            qvl.verify(s.quote, qvl.QuoteCollateralV3.from_json(s.collateral), late)
    s = intel_samples["tdx_prod_quote_SPR_E4"]
    with pytest.raises(ValueError, match="No matching TCB level"):
        qvl.verify(s.quote, qvl.QuoteCollateralV3.from_json(s.collateral), int(s.now.timestamp()))
