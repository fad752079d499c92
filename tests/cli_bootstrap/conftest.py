"""Fixtures: simulated TEE PKIs (a trusted one and a stranger), a local CA, an owner identity, the fake appliance,
and `ckms` run as a subprocess with its own HOME and configuration path, as a user runs it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from cryptography.x509.oid import NameOID

from attestation.tee.simulated import SimulatedTee
from tests.cli.conftest import Result, run_ckms
from tests.cli_bootstrap.fake_appliance import FakeAppliance, pem

KINDS = ("sev-snp", "tdx", "sgx")


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated vendor PKI the tests trust (created once per session: the AMD one takes a second)."""
    return tmp_path_factory.mktemp("sim-trusted")


@pytest.fixture(scope="session")
def other_sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another simulated PKI: genuine-looking evidence from a root nobody trusts."""
    return tmp_path_factory.mktemp("sim-other")


def sim_root(directory: Path, kind: str) -> Path:
    """The root file a verifier is given for `kind` evidence of that PKI."""
    return SimulatedTee(directory, kind).root_path()


def measurements_file(path: Path, entries: dict[str, Any]) -> Path:
    path.write_text(json.dumps({
        "format": "kms-measurements/v1",
        "image": {"name": "kms-appliance", "version": "0.0.0-test"},
        "tee": entries,
    }))
    return path


def simulated_entry(directory: Path, kind: str, measurement: bytes | None = None) -> dict[str, Any]:
    tee = SimulatedTee(directory, kind, measurement=measurement)
    return {"simulated": {"measurement": [tee.measurement.hex()], "format": kind}}


@dataclass
class Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Ca:
    base = tmp_path_factory.mktemp("ca")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Owner Test CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = base / "ca.pem", base / "ca.key"
    cert_path.write_text(pem(cert))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Ca(cert, key, cert_path, key_path)


@dataclass
class Owner:
    cert: x509.Certificate
    p12: Path
    password: str


@pytest.fixture(scope="session")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Owner:
    base = tmp_path_factory.mktemp("owner")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "owner")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = base / "owner.p12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"owner", key, cert, None, BestAvailableEncryption(b"pw")))
    return Owner(cert, path, "pw")


@pytest.fixture
def appliance(sim_dir: Path) -> Callable[..., Any]:
    """`with appliance(kind="sev-snp", **options) as fake:` a running fake appliance."""

    def factory(kind: str = "sev-snp", **options: Any) -> Any:
        return FakeAppliance(sim_dir, kind, **options).running()

    return factory


@dataclass
class Cli:
    """`ckms` in a subprocess: its own HOME, and KMS_CLI_CONF at `conf` (absent until a command writes it)."""

    workdir: Path
    home: Path
    conf: Path

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return run_ckms(list(args), cwd=self.workdir, home=self.home, conf=self.conf, env=env)

    def saved(self) -> dict[str, Any]:
        return json.loads(self.conf.read_text())


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    yield Cli(work, home, tmp_path / "kms.json")


def lines(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.strip()]


def failed_check(result: Result) -> str:
    """The check named by the single [FAIL] line, which must be the last line (nothing ran after it)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    out = lines(result)
    fails = [line for line in out if line.startswith("[FAIL] ")]
    assert len(fails) == 1, out
    assert out[-1] == fails[0], out
    return fails[0].removeprefix("[FAIL] ").split(":", 1)[0]
