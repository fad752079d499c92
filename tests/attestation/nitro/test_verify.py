"""Nitro verification: the real sample at its own timestamp with the pinned AWS root, and documents of a test
PKI for everything the sample cannot show (non-debug PCRs, other roots, bad chains, key usage)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.errors import AttestationError, FormatError, VerificationError
from attestation.formats import nitro
from attestation.roots import AWS_NITRO_ROOT_SHA256, TrustedRoots, fingerprint, pinned
from attestation.verify import Policy, verify_evidence
from attestation.verify.nitro import verify_nitro
from tests.attestation.nitro.builder import NitroTestPki, make_cert, pcrs
from tests.attestation.nitro.conftest import SIM_TIME

DEBUG_OK = Policy(allow_debug=True)


def _check(evidence: bytes, now: datetime, policy: Policy | None = None, roots: TrustedRoots | None = None) -> str:
    with pytest.raises(VerificationError) as e:
        verify_evidence(evidence, now=now, policy=policy, roots=roots)
    return e.value.check


# ---------------------------------------------------------------------------------------------------- the sample


def test_sample_verifies_at_its_timestamp(nitro_sample: bytes, sample_time: datetime) -> None:
    claims = verify_evidence(nitro_sample, now=sample_time, policy=DEBUG_OK)
    p = nitro.parse(nitro_sample).payload
    assert claims.tee == "nitro"
    assert claims.debug is True
    assert claims.measurement == bytes(48) == p.pcr(0)
    assert claims.report_data == p.user_data and len(claims.report_data) == 91
    assert claims.nonce == p.nonce and claims.public_key is None
    assert claims.pcrs == p.pcrs
    assert claims.verified_at == sample_time
    assert claims.root_fingerprint == AWS_NITRO_ROOT_SHA256 and claims.simulated is False
    assert dict(claims.details)["module_id"] == p.module_id
    # same through the Nitro verifier directly, with the pinned roots passed explicitly
    assert verify_nitro(nitro_sample, now=sample_time, policy=DEBUG_OK, roots=pinned()) == claims


def test_sample_is_refused_by_default_as_debug(nitro_sample: bytes, sample_time: datetime) -> None:
    assert _check(nitro_sample, sample_time) == "debug"


def test_sample_outside_its_leaf_validity(nitro_sample: bytes, sample_time: datetime) -> None:
    leaf_end = datetime.fromisoformat("2023-09-18T17:37:12+00:00")
    # still fine up to the end of the enclave certificate, and within the clock skew before the timestamp
    verify_evidence(nitro_sample, now=leaf_end, policy=DEBUG_OK)
    verify_evidence(nitro_sample, now=sample_time - timedelta(seconds=59), policy=DEBUG_OK)
    assert _check(nitro_sample, leaf_end + timedelta(seconds=1), DEBUG_OK) == "nitro-expired"
    assert _check(nitro_sample, datetime.fromisoformat("2026-11-23T00:00:00+00:00"), DEBUG_OK) == "nitro-expired"
    assert _check(nitro_sample, sample_time - timedelta(minutes=2), DEBUG_OK) == "nitro-timestamp"
    assert _check(nitro_sample, datetime.fromisoformat("2023-09-18T14:00:00+00:00"), DEBUG_OK) == "nitro-timestamp"


def test_naive_now_is_refused(nitro_sample: bytes, sample_time: datetime) -> None:
    with pytest.raises(VerificationError) as e:
        verify_nitro(nitro_sample, now=sample_time.replace(tzinfo=None), policy=DEBUG_OK, roots=pinned())
    assert e.value.check == "time"


def test_sample_with_another_root_is_refused(nitro_sample: bytes, sample_time: datetime, pki: NitroTestPki) -> None:
    assert _check(nitro_sample, sample_time, DEBUG_OK, pki.roots) == "nitro-root"
    assert _check(nitro_sample, sample_time, DEBUG_OK, TrustedRoots()) == "nitro-root"
    # trusting both is fine
    both = TrustedRoots(nitro=(pki.root, *pinned().nitro))
    assert verify_evidence(nitro_sample, now=sample_time, policy=DEBUG_OK, roots=both).simulated is False


def test_sample_pcr_policy_both_ways(nitro_sample: bytes, sample_time: datetime) -> None:
    p = nitro.parse(nitro_sample).payload
    pcr3, pcr4 = p.pcr(3), p.pcr(4)
    assert pcr3 and pcr4
    ok = Policy(allow_debug=True, pcrs=((3, pcr3), (4, pcr4)), measurements=(bytes(48),))
    verify_evidence(nitro_sample, now=sample_time, policy=ok)
    assert _check(nitro_sample, sample_time, Policy(allow_debug=True, pcrs=((3, pcr4),))) == "pcrs"
    assert _check(nitro_sample, sample_time, Policy(allow_debug=True, pcrs=((20, bytes(48)),))) == "pcrs"
    assert _check(nitro_sample, sample_time, Policy(allow_debug=True, measurements=(pcr3,))) == "measurement"


def test_sample_report_data_is_user_data(nitro_sample: bytes, sample_time: datetime) -> None:
    user_data = nitro.parse(nitro_sample).payload.user_data
    assert user_data
    verify_evidence(nitro_sample, now=sample_time, policy=Policy(allow_debug=True, report_data=user_data))
    wrong = Policy(allow_debug=True, report_data=user_data[:-1] + b"\x00")
    assert _check(nitro_sample, sample_time, wrong) == "report-data"
    nonce = nitro.parse(nitro_sample).payload.nonce
    assert _check(nitro_sample, sample_time, Policy(allow_debug=True, report_data=nonce)) == "report-data"


# Every single-byte change of the real document must be refused. Split in chunks so xdist can spread them.
_CHUNKS = 8


@pytest.mark.parametrize("chunk", range(_CHUNKS))
def test_every_byte_flip_is_rejected(nitro_sample: bytes, sample_time: datetime, chunk: int) -> None:
    size = len(nitro_sample)
    start, end = chunk * size // _CHUNKS, (chunk + 1) * size // _CHUNKS
    for i in range(start, end):
        flipped = bytearray(nitro_sample)
        flipped[i] ^= 0x01
        try:
            verify_evidence(bytes(flipped), now=sample_time, policy=DEBUG_OK)
        except (FormatError, VerificationError):
            continue
        pytest.fail(f"flipping bit 0 of byte {i} was accepted")


def test_flips_reach_each_part(nitro_sample: bytes, sample_time: datetime) -> None:
    """Flips in the protected header, the payload and the signature each fail, the latter two by signature."""
    doc = nitro.parse(nitro_sample)
    sig_at = len(nitro_sample) - 96
    payload_at = nitro_sample.index(doc.payload_bytes)
    cases = {3: FormatError, payload_at + 200: VerificationError, sig_at + 10: VerificationError}
    for i, kind in cases.items():
        flipped = bytearray(nitro_sample)
        flipped[i] ^= 0x01
        with pytest.raises(kind) as e:
            verify_evidence(bytes(flipped), now=sample_time, policy=DEBUG_OK)
        if kind is VerificationError:
            assert e.value.check == "nitro-signature"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- test PKI


def test_simulated_document_verifies_and_says_so(pki: NitroTestPki) -> None:
    pcr0 = bytes(range(100, 148))
    doc = pki.document(SIM_TIME, pcr_values=pcrs(pcr0), user_data=b"u" * 64, nonce=b"n" * 32, public_key=b"k" * 65)
    claims = verify_evidence(doc, now=SIM_TIME + timedelta(minutes=5), roots=pki.roots)
    assert claims.debug is False and claims.measurement == pcr0
    assert claims.simulated is True and claims.root_fingerprint == fingerprint(pki.root)
    assert claims.report_data == b"u" * 64 and claims.nonce == b"n" * 32 and claims.public_key == b"k" * 65
    # ... and is refused with the pinned AWS root
    assert _check(doc, SIM_TIME) == "nitro-root"
    # the tagged COSE form verifies too
    verify_evidence(pki.document(SIM_TIME, tagged=True), now=SIM_TIME, roots=pki.roots)


def test_simulated_pcr_policy_both_ways(pki: NitroTestPki) -> None:
    pcr0 = bytes(range(100, 148))
    values = pcrs(pcr0)
    doc = pki.document(SIM_TIME, pcr_values=values)
    good = Policy(measurements=(b"\x00" * 48, pcr0), pcrs=((1, values[1]), (2, values[2]), (3, values[3])))
    assert verify_evidence(doc, now=SIM_TIME, policy=good, roots=pki.roots).pcrs == tuple(sorted(values.items()))
    for bad in (
        Policy(measurements=(values[1],)),
        Policy(pcrs=((0, values[1]),)),
        Policy(pcrs=((2, values[1]),)),
        Policy(pcrs=((15, b"\x01" * 48),)),
    ):
        assert _check(doc, SIM_TIME, bad, pki.roots) in ("measurement", "pcrs")


def test_debug_is_pcr0_to_2_all_zero(pki: NitroTestPki) -> None:
    debug_doc = pki.document(SIM_TIME, pcr_values=pcrs(debug=True))
    assert _check(debug_doc, SIM_TIME, None, pki.roots) == "debug"
    assert verify_evidence(debug_doc, now=SIM_TIME, policy=DEBUG_OK, roots=pki.roots).debug
    one_nonzero = pcrs(debug=True)
    one_nonzero[2] = b"\x01" + bytes(47)
    claims = verify_evidence(pki.document(SIM_TIME, pcr_values=one_nonzero), now=SIM_TIME, roots=pki.roots)
    assert claims.debug is False
    missing = {i: v for i, v in pcrs().items() if i != 1}
    assert _check(pki.document(SIM_TIME, pcr_values=missing), SIM_TIME, None, pki.roots) == "nitro-pcrs"


def test_document_time_outside_the_chain(pki: NitroTestPki) -> None:
    late = SIM_TIME + timedelta(hours=4)  # after the 3-hour leaf
    assert _check(pki.document(late), late, None, pki.roots) == "nitro-chain"
    early = SIM_TIME - timedelta(hours=1)  # before the leaf
    assert _check(pki.document(early), early, None, pki.roots) == "nitro-chain"


def test_wrong_signing_key(pki: NitroTestPki) -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    doc = pki.sign(pki.payload(SIM_TIME), key=other)
    assert _check(doc, SIM_TIME, None, pki.roots) == "nitro-signature"


def test_leaf_without_p384_key(pki: NitroTestPki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = make_cert("p256", key, "test.zonal.nitro-enclaves", pki.inter_key, SIM_TIME, SIM_TIME + timedelta(hours=3),
                     ca=False)
    doc = pki.sign(pki.payload(SIM_TIME, certificate=leaf), key=pki.leaf_key)
    assert _check(doc, SIM_TIME, None, pki.roots) == "nitro-signature"


def test_chain_order_and_issuers(pki: NitroTestPki) -> None:
    # cabundle without the intermediate: the leaf does not chain to the root
    doc = pki.document(SIM_TIME, cabundle=[pki.root])
    assert _check(doc, SIM_TIME, None, pki.roots) == "nitro-chain"
    # leaf first instead of root first
    doc = pki.document(SIM_TIME, cabundle=[pki.inter, pki.root])
    assert _check(doc, SIM_TIME, None, pki.roots) == "nitro-root"
    # the AWS root in cabundle[0], but the chain is ours
    aws = pinned().nitro[0]
    doc = pki.document(SIM_TIME, cabundle=[aws, pki.inter])
    assert _check(doc, SIM_TIME) == "nitro-chain"


def _variant(pki: NitroTestPki, **leaf_args: object) -> tuple[NitroTestPki, bytes]:
    """The same PKI with a re-issued leaf (same key) built with `leaf_args`."""
    leaf = make_cert("leaf", pki.leaf_key, "test.zonal.nitro-enclaves", pki.inter_key, SIM_TIME,
                     SIM_TIME + timedelta(hours=3), **leaf_args)  # type: ignore[arg-type]
    return pki, pki.sign(pki.payload(SIM_TIME, certificate=leaf))


def test_key_usage_and_basic_constraints(pki: NitroTestPki) -> None:
    from cryptography import x509

    no_sign = x509.KeyUsage(False, True, False, False, False, False, False, False, False)
    _, doc = _variant(pki, ca=False, key_usage=no_sign)
    assert _check(doc, SIM_TIME, None, pki.roots) == "nitro-key-usage"
    _, doc = _variant(pki, ca=True, path_length=0)
    assert _check(doc, SIM_TIME, None, pki.roots) == "nitro-key-usage"
    from cryptography.hazmat.primitives import hashes

    _, doc = _variant(pki, ca=False, algorithm=hashes.SHA256())
    assert _check(doc, SIM_TIME, None, pki.roots) == "nitro-key-usage"


def test_path_length_and_ca_usage() -> None:
    pki = NitroTestPki.create(SIM_TIME)
    # an extra CA under the pathlen-0 intermediate
    sub_key = ec.generate_private_key(ec.SECP384R1())
    sub = make_cert("sub", sub_key, "test.zonal.nitro-enclaves", pki.inter_key, SIM_TIME - timedelta(days=1),
                    SIM_TIME + timedelta(days=1), ca=True, path_length=None)
    leaf = make_cert("leaf", pki.leaf_key, "sub", sub_key, SIM_TIME, SIM_TIME + timedelta(hours=3), ca=False)
    doc = pki.sign(pki.payload(SIM_TIME, certificate=leaf, cabundle=[pki.root, pki.inter, sub]))
    assert _check(doc, SIM_TIME, None, pki.roots) == "nitro-key-usage"
    # an intermediate CA without keyCertSign
    from cryptography import x509

    no_cert_sign = x509.KeyUsage(True, False, False, False, False, False, True, False, False)
    inter = make_cert("test.zonal.nitro-enclaves", pki.inter_key, "test.nitro-enclaves", pki.root_key,
                      SIM_TIME - timedelta(days=1), SIM_TIME + timedelta(days=1), ca=True, key_usage=no_cert_sign)
    doc = pki.sign(pki.payload(SIM_TIME, cabundle=[pki.root, inter]))
    assert _check(doc, SIM_TIME, None, pki.roots) == "nitro-key-usage"


def test_corrupt_certificates_are_format_errors(pki: NitroTestPki, nitro_sample: bytes) -> None:
    for payload in (pki.payload(SIM_TIME), nitro.parse(nitro_sample).payload):
        import dataclasses

        bad_leaf = dataclasses.replace(payload, certificate=b"\x30\x03\x02\x01\x00")
        with pytest.raises(FormatError) as e:
            verify_evidence(pki.sign(bad_leaf), now=SIM_TIME, roots=pki.roots)
        assert e.value.field == "certificate"
        bad_inter = dataclasses.replace(payload, cabundle=(payload.cabundle[0], b"garbage"))
        with pytest.raises(AttestationError):
            verify_evidence(pki.sign(bad_inter), now=SIM_TIME, roots=pki.roots)
