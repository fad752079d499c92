"""The real SEV-SNP samples against the pinned AMD roots, at pinned times inside and outside their windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.errors import FormatError, VerificationError
from attestation.formats.snp import GUID_ARK, GUID_ASK, GUID_VCEK, REPORT_SIZE, CertTable
from attestation.roots import AmdRoots, TrustedRoots, fingerprint, pinned
from attestation.verify import verify_evidence
from attestation.verify.amd import verify_cert_chain, verify_snp, verify_vcek
from attestation.verify.policy import Policy
from attestation.verify.x509util import load_pem_chain

from .conftest import Sample

SAMPLES = ["virtee-milan", "trustee-milan"]
ONE_SECOND = timedelta(seconds=1)


def _verify(sample: Sample, now: datetime, **kwargs: object) -> object:
    return verify_snp(sample.report, now=now, vcek=sample.vcek, cert_chain=sample.cert_chain, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_verifies_inside_its_window(snp_samples: dict[str, Sample], name: str) -> None:
    sample = snp_samples[name]
    for now in (sample.not_before, sample.inside, sample.not_after):
        claims = verify_snp(sample.report, now=now, vcek=sample.vcek, cert_chain=sample.cert_chain)
        assert claims.tee == "sev-snp" and claims.product == "Milan"
        assert not claims.simulated and not claims.debug
        assert claims.verified_at == now
        assert claims.root_fingerprint == fingerprint(pinned().amd_for("Milan").ark)  # type: ignore[union-attr]
        assert claims.measurement == sample.report[0x90:0xC0]
        assert claims.report_data == sample.report[0x50:0x90]
        assert claims.host_data == bytes(32)
        assert claims.tcb == (("bootloader", 3), ("tee", 0), ("snp", 8), ("microcode", 0x73))
        details = dict(claims.details)
        assert details["chip_id"] == sample.report[0x1A0:0x1E0].hex()
        assert details["signing_key"] == "vcek" and details["product_name"] == "Milan-B0"


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_verifies_without_a_chain_with_the_pinned_ask(snp_samples: dict[str, Sample], name: str) -> None:
    sample = snp_samples[name]
    assert verify_snp(sample.report, now=sample.inside, vcek=sample.vcek).product == "Milan"


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize(
    ("when", "check"),
    [
        ("before", "vcek-chain"),
        ("after", "vcek-chain"),
        (datetime(2020, 10, 22, 17, 23, 4, tzinfo=UTC), "ark"),  # before the Milan ARK
        (datetime(2045, 10, 22, 17, 23, 6, tzinfo=UTC), "ark"),  # after the Milan ARK
        (datetime(2020, 10, 22, 18, 0, 0, tzinfo=UTC), "ask"),  # the ARK is valid, the ASK not yet
    ],
)
def test_sample_fails_outside_its_window(
    snp_samples: dict[str, Sample], name: str, when: str | datetime, check: str
) -> None:
    sample = snp_samples[name]
    now = {"before": sample.not_before - ONE_SECOND, "after": sample.not_after + ONE_SECOND}.get(
        when, when  # type: ignore[arg-type]
    )
    assert isinstance(now, datetime)
    with pytest.raises(VerificationError) as err:
        verify_snp(sample.report, now=now, vcek=sample.vcek, cert_chain=sample.cert_chain)
    assert err.value.check == check


def test_verify_evidence_dispatches_a_v2_report(snp_samples: dict[str, Sample]) -> None:
    sample = snp_samples["virtee-milan"]
    claims = verify_evidence(sample.report, now=sample.inside, vcek=sample.vcek, cert_chain=sample.cert_chain)
    assert claims.tee == "sev-snp"


def test_naive_now_is_refused(snp_samples: dict[str, Sample]) -> None:
    sample = snp_samples["virtee-milan"]
    with pytest.raises(VerificationError) as err:
        verify_snp(sample.report, now=datetime(2025, 1, 1), vcek=sample.vcek)
    assert err.value.check == "time"


def test_real_extended_report_built_from_the_sample(snp_samples: dict[str, Sample], att_vectors: Path) -> None:
    """The sample framed as SNP_GET_EXT_REPORT returns it, with its own VCEK, ASK and ARK in the table."""
    sample = snp_samples["virtee-milan"]
    ask, ark = (c.public_bytes(Encoding.DER) for c in load_pem_chain(sample.cert_chain or b""))
    table = CertTable.build([(GUID_VCEK, sample.vcek), (GUID_ASK, ask), (GUID_ARK, ark)])
    claims = verify_snp(sample.report + table.to_bytes() + bytes(1000), now=sample.inside)
    assert claims.product == "Milan" and not claims.simulated
    # the table's ARK must be the pinned one: a Genoa ARK is refused
    genoa_ark = (att_vectors / "virtee-sev" / "ark_genoa.pem").read_bytes()
    table = CertTable.build(
        [(GUID_VCEK, sample.vcek), (GUID_ARK, load_pem_chain(genoa_ark)[0].public_bytes(Encoding.DER))]
    )
    with pytest.raises(VerificationError) as err:
        verify_snp(sample.report + table.to_bytes(), now=sample.inside)
    assert err.value.check == "ark"


@pytest.mark.parametrize("vcek", ["test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"])
@pytest.mark.parametrize("report", ["trustee", "virtee"])
def test_invalid_vceks_never_verify(
    snp_samples: dict[str, Sample], att_vectors: Path, vcek: str, report: str
) -> None:
    raw = snp_samples["trustee-milan" if report == "trustee" else "virtee-milan"].report
    cert = (att_vectors / "trustee" / vcek).read_bytes()
    for now in (datetime(2023, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)):
        with pytest.raises(VerificationError) as err:
            verify_snp(raw, now=now, vcek=cert)
        assert err.value.check == "vcek-chain"
    with pytest.raises(VerificationError) as err:
        verify_vcek(cert, now=datetime(2025, 1, 1, tzinfo=UTC))
    assert err.value.check == "vcek-chain"


def test_vcek_of_another_chip_is_refused(snp_samples: dict[str, Sample]) -> None:
    """The trustee VCEK is genuine but belongs to another chip: its key does not verify the virtee report."""
    virtee, trustee = snp_samples["virtee-milan"], snp_samples["trustee-milan"]
    with pytest.raises(VerificationError) as err:
        verify_snp(virtee.report, now=virtee.inside, vcek=trustee.vcek)
    assert err.value.check == "report-signature"


def test_wrong_product_roots(snp_samples: dict[str, Sample], att_vectors: Path) -> None:
    sample = snp_samples["virtee-milan"]
    genoa = (att_vectors / "go-sev-guest" / "ask_ark_genoa.pem").read_bytes()
    with pytest.raises(VerificationError) as err:  # a Genoa chain for a Milan VCEK
        verify_snp(sample.report, now=sample.inside, vcek=sample.vcek, cert_chain=genoa)
    assert err.value.check == "ark"
    ask, ark = load_pem_chain(genoa)
    genoa_as_milan = TrustedRoots(amd=(("Milan", AmdRoots(ark=ark, ask=ask)),), vendor=False)
    with pytest.raises(VerificationError) as err:  # roots that claim to be Milan but are Genoa's
        verify_snp(sample.report, now=sample.inside, vcek=sample.vcek, roots=genoa_as_milan)
    assert err.value.check == "ask"
    with pytest.raises(VerificationError) as err:  # no Milan root at all
        verify_snp(sample.report, now=sample.inside, vcek=sample.vcek, roots=TrustedRoots())
    assert err.value.check == "product"


def test_policy_on_a_real_report(snp_samples: dict[str, Sample]) -> None:
    sample = snp_samples["trustee-milan"]
    measurement = sample.report[0x90:0xC0]
    assert _verify(sample, sample.inside, policy=Policy(measurements=(measurement,), vmpl=0, host_data=bytes(32)))
    with pytest.raises(VerificationError) as err:
        _verify(sample, sample.inside, policy=Policy(measurements=(bytes(48),)))
    assert err.value.check == "measurement"


# -- chains without a report -------------------------------------------------------------------------------------


def test_vlek_chain_verifies(att_vectors: Path) -> None:
    chain = (att_vectors / "go-sev-guest" / "ask_ark_milan_vlek.pem").read_bytes()
    now = datetime(2025, 1, 1, tzinfo=UTC)
    product, intermediates = verify_cert_chain(chain, now=now)
    assert product == "Milan" and [c.subject.rfc4514_string().split(",")[0] for c in intermediates] == [
        "CN=SEV-VLEK-Milan"
    ]
    assert intermediates[0] == pinned().amd_for("Milan").asvk  # type: ignore[union-attr]
    with pytest.raises(VerificationError) as err:  # before the ASVK was issued
        verify_cert_chain(chain, now=datetime(2022, 11, 16, tzinfo=UTC))
    assert err.value.check == "ask"
    with pytest.raises(VerificationError) as err:  # against the Genoa ARK
        verify_cert_chain(chain, now=now, product="Genoa")
    assert err.value.check == "ark"


@pytest.mark.parametrize(
    ("path", "product"),
    [("virtee-sev/cert_chain_milan", "Milan"), ("virtee-sev/cert_chain_turin", "Turin"),
     ("go-sev-guest/ask_ark_milan.pem", "Milan"), ("go-sev-guest/ask_ark_genoa.pem", "Genoa"),
     ("go-sev-guest/ask_ark_turin_vcek.pem", "Turin")],
)
def test_kds_chains_verify(att_vectors: Path, path: str, product: str) -> None:
    assert verify_cert_chain((att_vectors / path).read_bytes(), now=datetime(2025, 1, 1, tzinfo=UTC))[0] == product


def test_turin_vcek_chain(att_vectors: Path) -> None:
    vcek = (att_vectors / "virtee-sev" / "vcek_turin.der").read_bytes()
    chain = (att_vectors / "virtee-sev" / "cert_chain_turin").read_bytes()
    verified = verify_vcek(vcek, now=datetime(2025, 1, 1, tzinfo=UTC), cert_chain=chain)
    assert verified.product == "Turin" and verified.kind == "vcek"
    assert verified.extensions.fmc_spl == 0 and verified.extensions.hwid == bytes.fromhex("1e550a8ee5cf9f4d")
    # with the pinned Turin ASK only
    assert verify_vcek(vcek, now=datetime(2025, 1, 1, tzinfo=UTC)).product == "Turin"
    with pytest.raises(VerificationError) as err:
        verify_vcek(vcek, now=datetime(2024, 11, 6, tzinfo=UTC), cert_chain=chain)
    assert err.value.check == "vcek-chain"
    with pytest.raises(VerificationError) as err:  # the Turin VCEK against a Milan chain
        verify_vcek(vcek, now=datetime(2025, 1, 1, tzinfo=UTC), product="Milan")
    assert err.value.check == "product"


# -- every single-byte change is refused -------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_every_byte_flip_is_rejected(snp_samples: dict[str, Sample], name: str) -> None:
    sample = snp_samples[name]
    roots = pinned()
    _verify(sample, sample.inside)  # the untouched report verifies
    accepted = []
    for i in range(REPORT_SIZE):
        for mask in (0x01, 0xFF):
            raw = bytearray(sample.report)
            raw[i] ^= mask
            try:
                verify_snp(bytes(raw), now=sample.inside, vcek=sample.vcek, cert_chain=sample.cert_chain, roots=roots)
            except (FormatError, VerificationError):
                continue
            accepted.append((hex(i), mask))
    assert accepted == []
