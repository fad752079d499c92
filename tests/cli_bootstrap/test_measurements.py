"""measurements.json and the other sources of expected values: parsing, refusals, and the policy they produce."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from attestation.errors import VerificationError
from attestation.verify import Claims
from ckms.measurements import (
    Expectation,
    MeasurementsError,
    from_tee_conf,
    load_measurements_file,
    mrsigner_of,
    parse_measurements,
    select,
    simulated_root_paths,
)

M48 = [bytes([i]) * 48 for i in range(1, 4)]
M32 = bytes([7]) * 32


def doc(tee: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"format": "kms-measurements/v1", "tee": tee, **extra}


def full() -> dict[str, Any]:
    return doc(
        {
            "sev-snp": {"measurement": [M48[0].hex(), M48[1].hex()], "host_data": "ab" * 32},
            "tdx": {"mrtd": [M48[0].hex()], "rtmr1": [M48[1].hex(), M48[2].hex()], "rtmr2": [M48[2].hex()],
                    "mrconfigid": "cd" * 48},
            "sgx": {"mrenclave": [M32.hex()], "mrsigner": "ef" * 32},
            "simulated": {"measurement": [M48[2].hex()], "format": "sev-snp"},
        },
        image={"name": "kms-appliance", "version": "0.1.0", "root_hash": "00", "artifacts": {}},
        tpm={"pcr11": "00" * 32},
    )


def claims(tee: str, measurement: bytes, *, rtmrs: tuple[bytes, ...] = ()) -> Claims:
    return Claims(tee=tee, measurement=measurement, report_data=bytes(64), debug=False,
                  verified_at=datetime.now(UTC), root_fingerprint="00", rtmrs=rtmrs)


def test_the_spec_example_shape_reads_every_type_with_lists() -> None:
    values = parse_measurements(full(), "m.json")
    assert set(values.entries) == {"sev-snp", "tdx", "sgx", "simulated"}
    snp = values.for_evidence("sev-snp", simulated=False)
    assert snp.measurements == (M48[0], M48[1])
    policy = snp.policy()
    assert policy.measurements == (M48[0], M48[1]) and policy.host_data == bytes.fromhex("ab" * 32)
    assert policy.allow_debug is False
    tdx = values.for_evidence("tdx", simulated=False).policy()
    assert tdx.measurements == (M48[0],) and tdx.mr_config_id == bytes.fromhex("cd" * 48)
    sgx = values.for_evidence("sgx", simulated=False).policy()
    assert sgx.measurements == (M32,) and sgx.mrsigners == (bytes.fromhex("ef" * 32),)
    sim = values.for_evidence("sev-snp", simulated=True)
    assert sim.tee == "simulated" and sim.measurements == (M48[2],)
    assert values.image == "kms-appliance 0.1.0"


def test_unknown_keys_are_ignored_at_every_level() -> None:
    data = full()
    data["future"] = {"x": 1}
    data["tee"]["sev-snp"]["vcpus"] = 4
    data["tee"]["nitro"] = {"pcr0": "00"}
    values = parse_measurements(data, "m.json")
    assert "nitro" not in values.entries
    assert values.for_evidence("sev-snp", simulated=False).measurements == (M48[0], M48[1])


def test_a_missing_tee_type_refuses_that_evidence_with_a_named_check() -> None:
    values = parse_measurements(doc({"tdx": {"mrtd": [M48[0].hex()]}}), "m.json")
    with pytest.raises(VerificationError) as err:
        values.for_evidence("sev-snp", simulated=False)
    assert err.value.check == "tee-type" and "sev-snp" in err.value.message
    # Simulated evidence needs the "simulated" entry, even when the emulated format has one.
    with pytest.raises(VerificationError) as err:
        values.for_evidence("tdx", simulated=True)
    assert err.value.check == "tee-type"


def test_simulated_entry_format_must_match_the_evidence() -> None:
    values = parse_measurements(full(), "m.json")
    with pytest.raises(VerificationError) as err:
        values.for_evidence("tdx", simulated=True)
    assert err.value.check == "tee-type" and "sev-snp" in err.value.message


def test_a_single_string_is_a_one_entry_list() -> None:
    values = parse_measurements(doc({"sev-snp": {"measurement": M48[0].hex()}}), "m.json")
    assert values.for_evidence("sev-snp", simulated=False).measurements == (M48[0],)


def test_a_32_byte_mrconfigid_is_an_owner_hash_padded_to_48() -> None:
    values = parse_measurements(doc({"tdx": {"mrtd": [M48[0].hex()], "mrconfigid": "11" * 32}}), "m.json")
    assert values.for_evidence("tdx", simulated=False).mr_config_id == bytes([0x11]) * 32 + bytes(16)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"format": "kms-measurements/v2", "tee": {}}, "format"),
        ({"tee": {}}, "format"),
        (doc([]), "tee"),  # type: ignore[arg-type]
        (doc({"sev-snp": {"measurement": ["zz" * 48]}}), "not hexadecimal"),
        (doc({"sev-snp": {"measurement": ["00" * 32]}}), "96"),
        (doc({"sev-snp": {"measurement": []}}), "empty"),
        (doc({"sev-snp": {}}), "measurement"),
        (doc({"sev-snp": {"measurement": [M48[0].hex()], "host_data": "00" * 48}}), "host_data"),
        (doc({"sgx": {"mrenclave": [M48[0].hex()]}}), "64"),
        (doc({"tdx": {"mrtd": [M48[0].hex()], "rtmr1": [1]}}), "rtmr1"),
        (doc({"simulated": {"measurement": [M32.hex()], "format": "sev-snp"}}), "96"),
        (doc({"simulated": {"measurement": [M32.hex()], "format": "nitro"}}), "format"),
        (doc({"sgx": "x"}), "object"),
        ([], "object"),
    ],
)
def test_bad_files_are_refused_naming_the_field(data: Any, fragment: str) -> None:
    with pytest.raises(MeasurementsError) as err:
        parse_measurements(data, "m.json")
    assert fragment in err.value.message and "m.json" in err.value.message


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(MeasurementsError, match="cannot read"):
        load_measurements_file(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(MeasurementsError, match="not valid JSON"):
        load_measurements_file(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(full()))
    assert load_measurements_file(good).source == str(good)


def test_rtmr_lists_are_checked_on_verified_claims() -> None:
    values = parse_measurements(full(), "m.json")
    tdx = values.for_evidence("tdx", simulated=False)
    rtmrs = (bytes(48), M48[2], M48[2], bytes(48))
    assert [c for c, _ in tdx.check_claims(claims("tdx", M48[0], rtmrs=rtmrs))] == ["rtmr1", "rtmr2"]
    with pytest.raises(VerificationError) as err:
        tdx.check_claims(claims("tdx", M48[0], rtmrs=(bytes(48), M48[0], M48[2], bytes(48))))
    assert err.value.check == "rtmr1"
    with pytest.raises(VerificationError) as err:
        tdx.check_claims(claims("tdx", M48[0], rtmrs=(bytes(48), M48[1], M48[1], bytes(48))))
    assert err.value.check == "rtmr2"
    with pytest.raises(VerificationError) as err:  # evidence without RTMRs cannot satisfy an RTMR expectation
        Expectation("simulated", (M48[0],), rtmr1=(M48[1],)).check_claims(claims("sev-snp", M48[0]))
    assert err.value.check == "rtmr1"


def test_flags_apply_to_whatever_type_the_evidence_has() -> None:
    values = select(measurements_file=None, expected=(M48[0].hex(), M32.hex()), tee_conf=None, conf_dir=None,
                    conf_name="c")
    for kind, simulated in (("sev-snp", False), ("tdx", True), ("sgx", False)):
        assert values.for_evidence(kind, simulated).measurements == (M48[0], M32)
    with pytest.raises(MeasurementsError):
        select(measurements_file=None, expected=("abc",), tee_conf=None, conf_dir=None, conf_name="c")


def test_sources_precedence_and_refusals(tmp_path: Path) -> None:
    file = tmp_path / "m.json"
    file.write_text(json.dumps(full()))
    conf = {"measurements_file": "m.json", "sev_measurement": M48[1].hex()}
    with pytest.raises(MeasurementsError, match="not both"):
        select(measurements_file=file, expected=("00" * 48,), tee_conf=None, conf_dir=None, conf_name="c")
    # The command line wins over the configuration.
    flags = select(measurements_file=None, expected=(M48[2].hex(),), tee_conf=conf, conf_dir=tmp_path,
                   conf_name="c")
    assert flags.source == "--expected-measurement"
    # tee_conf.measurements_file is relative to the configuration's folder and wins over Cosmian's fields.
    from_conf = select(measurements_file=None, expected=(), tee_conf=conf, conf_dir=tmp_path, conf_name="c")
    assert from_conf.source == str(tmp_path / "m.json")
    with pytest.raises(MeasurementsError, match="no expected measurement"):
        select(measurements_file=None, expected=(), tee_conf={"verified_cert": "x"}, conf_dir=None, conf_name="c")


def test_cosmian_tee_conf_fields(tmp_path: Path) -> None:
    key = rsa.generate_private_key(65537, 3072)
    signer_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    values = from_tee_conf(
        {"sev_measurement": M48[0].hex(), "mr_enclave": M32.hex(), "public_signer_key": signer_pem}, None, "kms.json"
    )
    assert values is not None and values.source == "tee_conf in kms.json"
    assert values.for_evidence("sev-snp", simulated=False).measurements == (M48[0],)
    sgx = values.for_evidence("sgx", simulated=False)
    modulus = key.public_key().public_numbers().n.to_bytes(384, "little")
    assert sgx.mrsigner == hashlib.sha256(modulus).digest() == mrsigner_of(signer_pem, "x")
    with pytest.raises(VerificationError):  # no simulated entry from Cosmian's fields
        values.for_evidence("sev-snp", simulated=True)
    with pytest.raises(MeasurementsError, match="96"):
        from_tee_conf({"sev_measurement": M32.hex()}, None, "kms.json")
    assert from_tee_conf({}, None, "kms.json") is None


def test_simulated_root_paths(tmp_path: Path) -> None:
    assert simulated_root_paths((Path("/a.pem"),), {"simulated_root": "b.pem"}, tmp_path) == (Path("/a.pem"),)
    assert simulated_root_paths((), {"simulated_root": "b.pem"}, tmp_path) == (tmp_path / "b.pem",)
    assert simulated_root_paths((), {"simulated_root": ["/x.pem", "y.pem"]}, tmp_path) == (
        Path("/x.pem"), tmp_path / "y.pem"
    )
    assert simulated_root_paths((), None, tmp_path) == ()


def test_values_the_evidence_cannot_carry_are_refused_not_skipped() -> None:
    values = parse_measurements(doc({"simulated": {"measurement": [M48[0].hex()], "mrconfigid": "11" * 48}}), "m")
    with pytest.raises(VerificationError) as err:
        values.for_evidence("sev-snp", simulated=True)  # SNP has no MRCONFIGID: the AMD verifier would not look
    assert err.value.check == "policy" and "mrconfigid" in err.value.message
    assert values.for_evidence("tdx", simulated=True).mr_config_id == bytes([0x11]) * 48


def test_evidence_of_a_non_appliance_tee_is_refused() -> None:
    values = select(measurements_file=None, expected=(M48[0].hex(),), tee_conf=None, conf_dir=None, conf_name="c")
    with pytest.raises(VerificationError) as err:
        values.for_evidence("nitro", simulated=False)
    assert err.value.check == "tee-type"
