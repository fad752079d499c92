"""`ckms bootstrap start` against the fake appliance, run as a user runs it: the happy paths and their output."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from attestation.ratls import spki_der
from attestation.tee.simulated import SimulatedTee
from ckms.commands.bootstrap import sign_csr
from tests.cli_bootstrap.conftest import (
    KINDS,
    Ca,
    Cli,
    Owner,
    failed_check,
    lines,
    measurements_file,
    sim_root,
    simulated_entry,
)
from tests.cli_bootstrap.fake_appliance import FakeAppliance, pem

SECRET = "5ec7e7" * 8  # recognisable in any output it must never reach


def start_args(
    fake: FakeAppliance, tmp_path: Path, sim_dir: Path, ca: Ca | None, *extra: str, kind: str | None = None
) -> list[str]:
    kind = kind or fake.kind
    secret = tmp_path / "db.secret"
    secret.write_text(SECRET + "\n")
    args = [
        "bootstrap", "start", "--bootstrap-url", fake.url,
        "--measurements", str(measurements_file(tmp_path / "measurements.json", simulated_entry(sim_dir, kind))),
        "--trust-simulated-root", str(sim_root(sim_dir, kind)),
        "--database-type", "sqlite", "--sqlite-path", "/var/lib/kms", "--database-secret-file", str(secret),
        "--wait-timeout", "20",
    ]
    if ca is not None:
        args += ["--subject", "CN=kms.test,O=Test", "--san", "localhost", "--san", "127.0.0.1",
                 "--ca-cert", str(ca.cert_path), "--ca-key", str(ca.key_path)]
    return args + list(extra)


PROVISIONING_ORDER = [
    "GET /attestation", "GET /bootstrap/status", "POST /csr", "POST /certificate", "POST /database", "POST /start",
]


@pytest.mark.parametrize("kind", KINDS)
def test_happy_path(
    kind: str, appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    with appliance(kind) as fake:
        result = cli(*start_args(fake, tmp_path, sim_dir, ca))
        assert result.returncode == 0, (result.stdout, result.stderr)
        out = lines(result)
        assert all(line.startswith(("[ OK ] ", "[SKIP] ")) for line in out), out
        for needle in (
            f"simulated {kind} evidence signature and vendor chain",
            "debug disabled",
            f"measurement {SimulatedTee(sim_dir, kind).measurement.hex()} is expected",
            "the evidence names this certificate's key",
            "carries our 32-byte nonce",
            "every further request must meet this exact certificate",
            "CSR signed by the local CA CN=Owner Test CA",
            "database configuration sent (sqlite, with secret)",
            "answers at https://127.0.0.1",
        ):
            assert any(needle in line for line in out), (needle, out)
        tcb = next(line for line in out if "TCB status" in line)
        assert tcb.startswith("[SKIP]") if kind == "sev-snp" else tcb.startswith("[ OK ] RA-TLS certificate: TCB")

        # The requests, in order, then the main KMS answering on the same port with the uploaded leaf.
        assert fake.paths()[: len(PROVISIONING_ORDER)] == PROVISIONING_ORDER
        assert set(fake.paths()[len(PROVISIONING_ORDER):]) == {"GET /version"}

        # The CSR went to the local CA: leaf = API key, the names asked for, serverAuth, issued by the CA.
        leaf, issuer = fake.chain
        assert issuer == ca.cert
        leaf.verify_directly_issued_by(ca.cert)
        assert spki_der(leaf) == spki_der(fake.api_key)
        assert leaf.subject.rfc4514_string() == "CN=kms.test,O=Test"
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(str(v) for v in san.get_values_for_type(x509.DNSName)) == ["localhost"]
        assert [str(v) for v in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
        assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days in (365, 366)

        assert fake.database == {
            "database_type": "sqlite", "database_url": None, "sqlite_path": "/var/lib/kms",
            "redis_master_password": None, "redis_findex_label": None, "database_secret": SECRET,
            "clear_database": False,
        }
        assert SECRET not in result.stdout + result.stderr

        saved = cli.saved()
        assert saved["kms_server_url"] == fake.url
        assert saved["verified_cert"] == pem(leaf)

        # Later calls pin that leaf: they reach the KMS through the saved configuration alone.
        version = cli("server-version")
        assert version.returncode == 0 and version.stdout.strip() == "4.99.0-fake", version.stderr


def test_json_output_is_one_list_of_steps(
    appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    with appliance() as fake:
        result = cli(*start_args(fake, tmp_path, sim_dir, ca, "--json"))
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)
    assert {s["status"] for s in steps} <= {"OK", "SKIP"}
    assert [s["check"] for s in steps][-3:] == ["start", "kms-ready", "config"]
    assert all(set(s) == {"status", "check", "message"} for s in steps)


def test_json_output_on_failure(appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path) -> None:
    with appliance() as fake:
        args = start_args(fake, tmp_path, sim_dir, ca, "--json")
        args.remove("--trust-simulated-root")
        args.remove(str(sim_root(sim_dir, "sev-snp")))
        result = cli(*args)
        assert result.returncode == 1
        steps = json.loads(result.stdout)
        # Simulated evidence is not the sev-snp the vendor roots would vouch for: no expected values apply.
        assert steps[-1]["status"] == "FAIL" and steps[-1]["check"] == "tee-type"
        assert "--trust-simulated-root" in steps[-1]["message"]
        assert fake.posts() == []


def test_csr_out_then_certificate(
    appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    csr_path = tmp_path / "kms.csr"
    with appliance() as fake:
        result = cli(*start_args(fake, tmp_path, sim_dir, None, "--subject", "CN=kms.test", "--san", "127.0.0.1",
                                 "--csr-out", str(csr_path)))
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert lines(result)[-1].startswith("[SKIP] certificate, database and start")
        assert fake.paths() == ["GET /attestation", "GET /bootstrap/status", "POST /csr"]
        assert fake.state == "waiting-certificate"
        assert not cli.conf.exists()

        # The external CA signs the exported CSR; the second run uploads that chain (after attesting again).
        csr = x509.load_pem_x509_csr(csr_path.read_bytes())
        assert csr.is_signature_valid and spki_der(csr.public_key()) == spki_der(fake.api_key)
        leaf = sign_csr(csr, ca.cert, ca.key, days=30, now=datetime.now(UTC))
        chain_path = tmp_path / "chain.pem"
        chain_path.write_text(pem(leaf) + pem(ca.cert))
        fake.requests.clear()
        result = cli(*start_args(fake, tmp_path, sim_dir, None, "--certificate", str(chain_path)))
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert any(line.startswith("[SKIP] CSR (using the externally signed certificate") for line in lines(result))
        assert fake.paths()[:5] == [
            "GET /attestation", "GET /bootstrap/status", "POST /certificate", "POST /database", "POST /start"
        ]
        assert fake.chain == [leaf, ca.cert]
        assert cli.saved()["verified_cert"] == pem(leaf)


def test_no_start_stops_after_the_database(
    appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    with appliance() as fake:
        result = cli(*start_args(fake, tmp_path, sim_dir, ca, "--no-start"))
        assert result.returncode == 0, result.stdout
        assert lines(result)[-1].startswith("[SKIP] KMS start (--no-start)")
        assert fake.posts() == ["/csr", "/certificate", "/database"] and fake.state == "ready"


def test_owner_certificate_is_presented_and_its_binding_reported(
    sim_dir: Path, owner: Owner, cli: Cli, ca: Ca, tmp_path: Path
) -> None:
    owner_hash = hashlib.sha256(spki_der(owner.cert)).digest()
    fake = FakeAppliance(sim_dir, "sev-snp", host_data=owner_hash, owner=owner.cert)
    with fake.running():
        measurements = measurements_file(tmp_path / "m.json", {"simulated": {
            "measurement": [fake.tee.measurement.hex()], "format": "sev-snp", "host_data": owner_hash.hex()}})
        args = start_args(fake, tmp_path, sim_dir, ca, "--owner-pkcs12", str(owner.p12))
        args[args.index("--measurements") + 1] = str(measurements)
        result = cli(*args, env={"CKMS_OWNER_PKCS12_PASSWORD": owner.password})
        assert result.returncode == 0, (result.stdout, result.stderr)
        out = lines(result)
        assert any("HOST_DATA is the hash of the owner key" in line for line in out), out
        assert any("only from the owner's client certificate" in line for line in out), out
        provisioning = [r for r in fake.requests if r.method == "POST"]
        assert provisioning and all(r.client_cert is not None for r in provisioning)
        presented = x509.load_pem_x509_certificate(provisioning[0].client_cert.encode())  # type: ignore[union-attr]
        assert presented == owner.cert


def test_owner_bound_server_without_owner_certificate_gets_nothing(
    sim_dir: Path, owner: Owner, cli: Cli, ca: Ca, tmp_path: Path
) -> None:
    with FakeAppliance(sim_dir, "sev-snp", owner=owner.cert).running() as fake:
        result = cli(*start_args(fake, tmp_path, sim_dir, ca))
        assert failed_check(result) == "owner-binding"
        assert fake.posts() == []


def test_already_provisioned_server_gets_nothing(
    appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    with appliance() as fake:
        fake.state = "waiting-database"  # someone else uploaded a certificate first
        result = cli(*start_args(fake, tmp_path, sim_dir, ca))
        assert failed_check(result) == "bootstrap-state"
        assert fake.posts() == []


def test_a_refused_step_stops_before_the_secret_is_sent(
    appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    with appliance() as fake:
        fake.refuse["/certificate"] = (400, "the chain does not verify")
        result = cli(*start_args(fake, tmp_path, sim_dir, ca))
        assert failed_check(result) == "certificate"
        assert "HTTP 400: the chain does not verify" in lines(result)[-1]
        assert fake.posts() == ["/csr", "/certificate"]
        assert fake.database is None and not cli.conf.exists()


def test_a_csr_for_other_names_is_not_signed(
    appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    with appliance() as fake:
        original = fake.app.view_functions["csr"]

        def other_names() -> Any:
            response = original()
            csr = x509.load_pem_x509_csr(response.get_json()["csr_pem"].encode())
            forged = (
                x509.CertificateSigningRequestBuilder()
                .subject_name(csr.subject)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("bank.example")]), critical=False)
                .sign(fake.api_key, hashes.SHA256())
            )
            return {"csr_pem": forged.public_bytes(serialization.Encoding.PEM).decode()}

        fake.app.view_functions["csr"] = other_names
        result = cli(*start_args(fake, tmp_path, sim_dir, ca))
        assert failed_check(result) == "csr-content"
        assert fake.posts() == ["/csr"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--csr-out", "x.csr"], "exactly one of"),
        (["--certificate", "/nonexistent"], "does not exist"),
        (["--database-type", "postgresql"], "needs --database-url"),
    ],
)
def test_usage_errors_send_nothing(
    extra: list[str], fragment: str, appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    with appliance() as fake:
        result = cli(*start_args(fake, tmp_path, sim_dir, ca, *extra))
        assert result.returncode == 2 and fragment in result.stderr, result.stderr
        assert fake.requests == [] and fake.connections == 0


def test_bad_local_input_fails_before_connecting(
    appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    not_hex = tmp_path / "not-hex.secret"
    not_hex.write_text("my database password\n")
    with appliance() as fake:
        args = start_args(fake, tmp_path, sim_dir, ca)
        args[args.index("--database-secret-file") + 1] = str(not_hex)
        result = cli(*args)
        assert failed_check(result) == "input" and "not hexadecimal" in result.stdout
        assert "my database password" not in result.stdout + result.stderr
        args = start_args(fake, tmp_path, sim_dir, ca)
        args[args.index("--ca-key") + 1] = str(sim_root(sim_dir, "tdx"))  # a certificate, not a key
        assert failed_check(cli(*args)) == "input"
        assert fake.connections == 0


def test_a_kms_that_never_presents_the_uploaded_leaf_is_not_pinned(
    appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    with appliance() as fake:
        fake.handover = False
        args = start_args(fake, tmp_path, sim_dir, ca)
        args[args.index("--wait-timeout") + 1] = "1"
        result = cli(*args)
        assert failed_check(result) == "kms-ready"
        assert "with the provisioned certificate within 1 s" in lines(result)[-1]
        assert not cli.conf.exists()
        assert "GET /version" not in fake.paths()  # every poll met the bootstrap certificate and stopped there


def test_a_kms_refusing_version_without_credentials_is_up(
    appliance: Callable[..., Any], cli: Cli, ca: Ca, sim_dir: Path, tmp_path: Path
) -> None:
    with appliance() as fake:
        fake.refuse["/version"] = (401, "credentials required")
        result = cli(*start_args(fake, tmp_path, sim_dir, ca))
        assert result.returncode == 0, result.stdout
        assert "KMS (version not disclosed: HTTP 401: credentials required) answers" in result.stdout
        assert cli.saved()["verified_cert"] == pem(fake.chain[0])
