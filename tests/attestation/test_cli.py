"""`ckms attestation` run as a user would: verify real samples, simulate, inspect RA-TLS certificates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.ratls import build_certificate
from attestation.tee.simulated import SimulatedTee


def ckms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckms", *args], capture_output=True, text=True, timeout=120)


def test_verify_real_sgx_sample_inside_and_outside_its_window(att_vectors: Path) -> None:
    quote = att_vectors / "dcap-qvl" / "sgx_quote"
    coll = att_vectors / "dcap-qvl" / "sgx_quote_collateral.json"
    ok = ckms("attestation", "verify", "--evidence", str(quote), "--collateral", str(coll),
              "--at", "2025-06-25T00:00:00Z", "--json")
    assert ok.returncode == 0, ok.stderr
    claims = json.loads(ok.stdout)
    assert claims["tee"] == "sgx" and claims["tcb_status"] == "ConfigurationAndSWHardeningNeeded"
    assert claims["measurement"].startswith("33d8736d") and claims["simulated"] is False
    late = ckms("attestation", "verify", "--evidence", str(quote), "--collateral", str(coll),
                "--at", "2027-01-01T00:00:00Z")
    assert late.returncode == 1 and late.stdout == ""
    assert late.stderr.startswith("ERROR: verification failed: check ") and "Traceback" not in late.stderr


def test_verify_hex_and_base64_samples(att_vectors: Path) -> None:
    snp = ckms("attestation", "verify", "--evidence", str(att_vectors / "virtee-sev" / "report_milan.hex"),
               "--vcek", str(att_vectors / "virtee-sev" / "vcek_milan.der"), "--at", "2025-01-01T00:00:00Z")
    assert snp.returncode == 0, snp.stderr
    assert "tee: sev-snp" in snp.stdout
    nitro = att_vectors / "nitro-evervault" / "valid-attestation-doc-base64"
    refused = ckms("attestation", "verify", "--evidence", str(nitro), "--at", "2023-09-18T15:03:31Z")
    assert refused.returncode == 1 and "check debug" in refused.stderr
    allowed = ckms("attestation", "verify", "--evidence", str(nitro), "--at", "2023-09-18T15:03:31Z", "--allow-debug")
    assert allowed.returncode == 0 and "tee: nitro" in allowed.stdout


def test_expected_measurement(att_vectors: Path) -> None:
    report = str(att_vectors / "trustee" / "test-report.bin")
    vcek = str(att_vectors / "trustee" / "test-vcek.der")
    wrong = ckms("attestation", "verify", "--evidence", report, "--vcek", vcek, "--at", "2025-01-01T00:00:00Z",
                 "--expected-measurement", "00" * 48)
    assert wrong.returncode == 1 and "check measurement" in wrong.stderr


@pytest.mark.parametrize("kind", ["sgx", "tdx", "sev-snp"])
def test_simulate_then_verify_only_with_the_simulated_root(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "evidence.bin"
    args = ["attestation", "simulate", "--tee", kind, "--sim-dir", str(tmp_path / "sim"), "--report-data", "aa" * 8,
            "--out", str(out)]
    coll = tmp_path / "collateral.json"
    if kind != "sev-snp":
        args += ["--collateral-out", str(coll)]
    sim = ckms(*args)
    assert sim.returncode == 0, sim.stderr
    root = Path(sim.stdout.strip())
    assert root.is_file()
    verify = ["attestation", "verify", "--evidence", str(out), "--expected-report-data", ("aa" * 8).ljust(128, "0")]
    if kind != "sev-snp":
        verify += ["--collateral", str(coll)]
    refused = ckms(*verify)
    assert refused.returncode == 1 and "verification failed" in refused.stderr
    accepted = ckms(*verify, "--trusted-root", str(root), "--json")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["simulated"] is True


def test_ratls_inspect(tmp_path: Path) -> None:
    tee = SimulatedTee(tmp_path / "sim", "sev-snp")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_certificate(
        key, x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "kms")]), lambda rd: tee.quote(rd).data
    )
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = ckms("attestation", "ratls", "inspect", "--cert", str(path))
    assert out.returncode == 0, out.stderr
    assert "form: standard" in out.stdout and "evidence: sev-snp" in out.stdout
    not_ratls = tmp_path / "plain.pem"
    not_ratls.write_bytes(b"not a certificate")
    bad = ckms("attestation", "ratls", "inspect", "--cert", str(not_ratls))
    assert bad.returncode == 1 and bad.stderr.startswith("ERROR: ")
