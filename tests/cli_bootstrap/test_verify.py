"""`ckms verify` against the fake appliance in its main-KMS mode (`/tee/attestation` bound to the API key)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tests.cli_bootstrap.conftest import (
    KINDS,
    Ca,
    Cli,
    failed_check,
    lines,
    measurements_file,
    sim_root,
    simulated_entry,
)
from tests.cli_bootstrap.fake_appliance import FakeAppliance, new_key, pem


def verify_args(sim_dir: Path, kind: str, tmp_path: Path, *extra: str) -> list[str]:
    m = measurements_file(tmp_path / "measurements.json", simulated_entry(sim_dir, kind))
    return ["verify", "--measurements", str(m), "--trust-simulated-root", str(sim_root(sim_dir, kind)), *extra]


def provisioned(sim_dir: Path, ca: Ca, kind: str = "sev-snp") -> FakeAppliance:
    fake = FakeAppliance(sim_dir, kind)
    fake.provision_directly(ca.cert, ca.key)
    return fake


def write_conf(cli: Cli, **fields: object) -> None:
    cli.conf.write_text(json.dumps(fields))


@pytest.mark.parametrize("kind", KINDS)
def test_verify_pinned_server(kind: str, sim_dir: Path, ca: Ca, cli: Cli, tmp_path: Path) -> None:
    fake = provisioned(sim_dir, ca, kind)
    with fake.running():
        leaf = pem(fake.chain[0])
        write_conf(cli, kms_server_url=fake.url, verified_cert=leaf, other_field={"kept": True})
        result = cli(*verify_args(sim_dir, kind, tmp_path))
        assert result.returncode == 0, (result.stdout, result.stderr)
        out = lines(result)
        assert out[2].startswith("[ OK ] TLS certificate pinned (verified_cert")
        for needle in (
            f"evidence: simulated {kind} evidence signature and vendor chain",
            "evidence: debug disabled",
            f"evidence: measurement {fake.tee.measurement.hex()} is expected",
            "nonce: the evidence answers our fresh 32-byte nonce",
            "key binding: the evidence names the key of this TLS certificate",
        ):
            assert any(needle in line for line in out), (needle, out)
        assert all(line.startswith(("[ OK ] ", "[SKIP] ")) for line in out), out
        assert fake.paths() == ["GET /tee/attestation"]
        saved = cli.saved()
        assert saved["verified_cert"] == leaf and saved["other_field"] == {"kept": True}


def test_verify_by_ca_chain_then_pin(sim_dir: Path, ca: Ca, cli: Cli, tmp_path: Path) -> None:
    fake = provisioned(sim_dir, ca)
    with fake.running():
        write_conf(cli, kms_server_url=fake.url)
        # The owner's CA is not a system root: the chain check fails, nothing else is asked.
        assert failed_check(cli(*verify_args(sim_dir, "sev-snp", tmp_path))) == "tls-chain"
        assert fake.requests == []
        result = cli(*verify_args(sim_dir, "sev-snp", tmp_path, "--ca-cert", str(ca.cert_path)))
        assert result.returncode == 0, result.stdout
        assert any(line.startswith("[ OK ] TLS certificate chain verifies against CA") for line in lines(result))
        assert cli.saved()["verified_cert"] == pem(fake.chain[0])


def test_accept_invalid_certs_relies_on_the_attestation_and_pins(
    sim_dir: Path, ca: Ca, cli: Cli, tmp_path: Path
) -> None:
    fake = provisioned(sim_dir, ca)
    with fake.running():
        write_conf(cli, kms_server_url="https://127.0.0.1:1")  # --url wins over the configuration
        result = cli(*verify_args(sim_dir, "sev-snp", tmp_path, "--url", fake.url, "--accept-invalid-certs"))
        assert result.returncode == 0, result.stdout
        assert any(line.startswith("[SKIP] TLS certificate not checked") for line in lines(result))
        assert cli.saved()["kms_server_url"] == fake.url
        assert cli.saved()["verified_cert"] == pem(fake.chain[0])


def test_no_save_leaves_the_configuration(sim_dir: Path, ca: Ca, cli: Cli, tmp_path: Path) -> None:
    fake = provisioned(sim_dir, ca)
    with fake.running():
        write_conf(cli, kms_server_url=fake.url)
        before = cli.conf.read_text()
        result = cli(*verify_args(sim_dir, "sev-snp", tmp_path, "--accept-invalid-certs", "--no-save", "--json"))
        assert result.returncode == 0
        steps = json.loads(result.stdout)
        assert steps[-1] == {"status": "SKIP", "check": "config", "message": "configuration not updated (--no-save)"}
        assert cli.conf.read_text() == before


def test_another_certificate_than_the_pinned_one(sim_dir: Path, ca: Ca, cli: Cli, tmp_path: Path) -> None:
    fake = provisioned(sim_dir, ca)
    other = provisioned(sim_dir, ca)
    with fake.running():
        write_conf(cli, kms_server_url=fake.url, verified_cert=pem(other.chain[0]))
        result = cli(*verify_args(sim_dir, "sev-snp", tmp_path))
        assert failed_check(result) == "tls-pin"
        assert fake.requests == []
        assert json.loads(cli.conf.read_text())["verified_cert"] == pem(other.chain[0])  # unchanged


@pytest.mark.parametrize(
    ("attack", "check"),
    [("replay", "ratls-nonce"), ("other-key", "ratls-binding"), ("debug", "debug"), ("measurement", "measurement"),
     ("root", "ark")],
)
def test_verify_refusals(attack: str, check: str, sim_dir: Path, other_sim_dir: Path, ca: Ca, cli: Cli,
                         tmp_path: Path) -> None:
    fake = FakeAppliance(sim_dir, debug=attack == "debug")
    fake.provision_directly(ca.cert, ca.key)
    args = verify_args(sim_dir, "sev-snp", tmp_path, "--accept-invalid-certs")
    if attack == "replay":
        fake.replay = fake.answer(fake.api_key, os.urandom(32))
    elif attack == "other-key":
        fake.answer_key = new_key()  # genuine evidence, for a key that is not the TLS key
    elif attack == "measurement":
        args[args.index("--measurements"):args.index("--measurements") + 2] = ["--expected-measurement", "00" * 48]
    elif attack == "root":
        args[args.index("--trust-simulated-root") + 1] = str(sim_root(other_sim_dir, "sev-snp"))
    with fake.running():
        write_conf(cli, kms_server_url=fake.url)
        result = cli(*args)
        assert failed_check(result) == check
        assert "verified_cert" not in cli.saved()


def test_plain_http_url_is_refused(cli: Cli, sim_dir: Path, tmp_path: Path) -> None:
    write_conf(cli, kms_server_url="http://127.0.0.1:9998")
    result = cli(*verify_args(sim_dir, "sev-snp", tmp_path))
    assert failed_check(result) == "input" and "https://" in result.stdout


def test_accept_invalid_certs_in_the_configuration_does_not_override_a_pin(
    sim_dir: Path, ca: Ca, cli: Cli, tmp_path: Path
) -> None:
    fake = provisioned(sim_dir, ca)
    other = provisioned(sim_dir, ca)
    with fake.running():
        write_conf(cli, kms_server_url=fake.url, accept_invalid_certs=True, verified_cert=pem(other.chain[0]))
        assert failed_check(cli(*verify_args(sim_dir, "sev-snp", tmp_path))) == "tls-pin"
        write_conf(cli, kms_server_url=fake.url, accept_invalid_certs=True)
        result = cli(*verify_args(sim_dir, "sev-snp", tmp_path))
        assert result.returncode == 0, result.stdout
        assert "[SKIP] TLS certificate not checked (accept_invalid_certs in the configuration)" in result.stdout


def test_unreachable_server(sim_dir: Path, cli: Cli, tmp_path: Path) -> None:
    with socket.socket() as bound:  # bound, never listening: connections to it are refused, and no one can take it
        bound.bind(("127.0.0.1", 0))
        write_conf(cli, kms_server_url=f"https://127.0.0.1:{bound.getsockname()[1]}")
        result = cli(*verify_args(sim_dir, "sev-snp", tmp_path))
    assert failed_check(result) == "tls-connect"
