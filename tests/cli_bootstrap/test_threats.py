"""The threats of spec/bootstrap.md §7 that ckms must stop, each against the fake appliance.

Every test checks the three things that matter: a non-zero exit, the failed check named on the last line, and
no provisioning request (nothing secret, nothing at all after the failed step) reaching the server.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from attestation.ratls import build_certificate
from attestation.tee.simulated import SimulatedTee
from tests.cli_bootstrap.conftest import KINDS, Ca, Cli, failed_check, lines, measurements_file, sim_root
from tests.cli_bootstrap.fake_appliance import FakeAppliance, new_key, resign_with_extension
from tests.cli_bootstrap.test_bootstrap_start import SECRET, start_args

CHAIN_CHECK = {"sev-snp": "ark", "tdx": "pck-chain", "sgx": "pck-chain"}


def refused(result: Any, fake: FakeAppliance, check: str | tuple[str, ...]) -> str:
    name = failed_check(result)
    assert name in ((check,) if isinstance(check, str) else check), lines(result)
    assert fake.posts() == [], fake.paths()
    assert fake.state == "waiting-certificate" and fake.database is None
    assert SECRET not in result.stdout + result.stderr
    return name


@pytest.mark.parametrize("kind", KINDS)
def test_simulated_evidence_without_trusting_its_root(
    kind: str, appliance: Callable[..., Any], cli: Cli, sim_dir: Path, ca: Ca, tmp_path: Path
) -> None:
    """The expected values even list the simulated measurement for the real TEE type: only the root is wrong."""
    with appliance(kind) as fake:
        args = start_args(fake, tmp_path, sim_dir, ca)
        i = args.index("--trust-simulated-root")
        del args[i : i + 2]
        args[args.index("--measurements") + 1:args.index("--measurements") + 2] = [str(measurements_file(
            tmp_path / "real.json", {kind: {
                {"sev-snp": "measurement", "tdx": "mrtd", "sgx": "mrenclave"}[kind]: [fake.tee.measurement.hex()]
            }}
        ))]
        result = cli(*args)
        refused(result, fake, CHAIN_CHECK[kind])
        assert "--trust-simulated-root" in lines(result)[-1]  # the hint for the usual first mistake


@pytest.mark.parametrize("kind", KINDS)
def test_evidence_from_another_simulated_root(
    kind: str, appliance: Callable[..., Any], cli: Cli, sim_dir: Path, other_sim_dir: Path, ca: Ca, tmp_path: Path
) -> None:
    with appliance(kind) as fake:
        args = start_args(fake, tmp_path, sim_dir, ca)
        args[args.index("--trust-simulated-root") + 1] = str(sim_root(other_sim_dir, kind))
        refused(cli(*args), fake, CHAIN_CHECK[kind])


def test_untrusted_root_file_of_the_wrong_family(
    appliance: Callable[..., Any], cli: Cli, sim_dir: Path, ca: Ca, tmp_path: Path
) -> None:
    """An Intel-style root cannot vouch for SEV-SNP evidence (nor the reverse)."""
    with appliance("sev-snp") as fake:
        args = start_args(fake, tmp_path, sim_dir, ca)
        args[args.index("--trust-simulated-root") + 1] = str(sim_root(sim_dir, "tdx"))
        refused(cli(*args), fake, "trusted-root")


def test_valid_evidence_moved_into_another_certificate(
    sim_dir: Path, cli: Cli, ca: Ca, tmp_path: Path
) -> None:
    fake = FakeAppliance(sim_dir)
    thief = new_key()
    fake.serve_cert = (resign_with_extension(fake.bootstrap_cert, thief, fake.extension_value()), thief)
    fake.answer_key = thief  # even its fresh answers are genuine for its own key: the certificate gives it away
    with fake.running():
        refused(cli(*start_args(fake, tmp_path, sim_dir, ca)), fake, "ratls-binding")


def test_fresh_evidence_for_another_key(appliance: Callable[..., Any], cli: Cli, sim_dir: Path, ca: Ca,
                                        tmp_path: Path) -> None:
    with appliance() as fake:
        fake.answer_key = new_key()
        refused(cli(*start_args(fake, tmp_path, sim_dir, ca)), fake, "ratls-binding")


def test_replayed_fresh_evidence(appliance: Callable[..., Any], cli: Cli, sim_dir: Path, ca: Ca,
                                 tmp_path: Path) -> None:
    with appliance() as fake:
        fake.replay = fake.answer(fake.bootstrap_key, os.urandom(32))  # genuine, same key, an old nonce
        result = cli(*start_args(fake, tmp_path, sim_dir, ca))
        refused(result, fake, "ratls-nonce")
        assert fake.paths() == ["GET /attestation"]


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_measurement(kind: str, appliance: Callable[..., Any], cli: Cli, sim_dir: Path, ca: Ca,
                           tmp_path: Path) -> None:
    other = hashlib.sha384(b"another image").digest()[: len(SimulatedTee(sim_dir, kind).measurement)]
    with appliance(kind) as fake:
        args = start_args(fake, tmp_path, sim_dir, ca)
        args[args.index("--measurements") + 1] = str(measurements_file(
            tmp_path / "other.json", {"simulated": {"measurement": [other.hex()], "format": kind}}
        ))
        refused(cli(*args), fake, "measurement")
        # The same through the short form.
        i = args.index("--measurements")
        args[i : i + 2] = ["--expected-measurement", other.hex()]
        refused(cli(*args), fake, "measurement")


def test_measurements_without_an_entry_for_the_tee_type(
    appliance: Callable[..., Any], cli: Cli, sim_dir: Path, ca: Ca, tmp_path: Path
) -> None:
    with appliance("sev-snp") as fake:
        args = start_args(fake, tmp_path, sim_dir, ca)
        measurement = fake.tee.measurement.hex()
        for entries in (
            {"sev-snp": {"measurement": [measurement]}},  # real SNP only: simulated evidence is another type
            {"simulated": {"measurement": [measurement], "format": "tdx"}},  # simulated, but another format
        ):
            args[args.index("--measurements") + 1] = str(measurements_file(tmp_path / "m2.json", entries))
            refused(cli(*args), fake, "tee-type")


def test_no_expected_values_at_all(appliance: Callable[..., Any], cli: Cli, sim_dir: Path, ca: Ca,
                                   tmp_path: Path) -> None:
    with appliance() as fake:
        args = start_args(fake, tmp_path, sim_dir, ca)
        i = args.index("--measurements")
        del args[i : i + 2]
        refused(cli(*args), fake, "expected-values")
        assert fake.connections == 0


@pytest.mark.parametrize("kind", KINDS)
def test_debug_tee(kind: str, sim_dir: Path, cli: Cli, ca: Ca, tmp_path: Path) -> None:
    with FakeAppliance(sim_dir, kind, debug=True).running() as fake:
        refused(cli(*start_args(fake, tmp_path, sim_dir, ca)), fake, "debug")


@pytest.mark.parametrize("where", [0, 9, 40, 200, 700, 1100, -300, -2])
def test_tampered_evidence_bytes(where: int, sim_dir: Path, cli: Cli, ca: Ca, tmp_path: Path) -> None:
    """One byte flipped in the certificate extension (CBOR framing, report body, signature, certificate table,
    claims), the certificate re-signed by its own key so that only the evidence is wrong."""
    fake = FakeAppliance(sim_dir)
    value = bytearray(fake.extension_value())
    value[where] ^= 0x01
    fake.serve_cert = (resign_with_extension(fake.bootstrap_cert, fake.bootstrap_key, bytes(value)), fake.bootstrap_key)
    with fake.running():
        name = refused(cli(*start_args(fake, tmp_path, sim_dir, ca)), fake,
                       ("ratls-extension", "ratls-evidence", "ratls-binding", "evidence", "report-signature",
                        "vcek-chain", "ask", "ark", "reserved", "signature-algo", "signer", "product", "vcek",
                        "vcek-tcb", "vcek-chip-id", "measurement", "debug", "tee-type"))
        assert name  # the check is named whatever byte was hit


def test_tampered_fresh_evidence(appliance: Callable[..., Any], cli: Cli, sim_dir: Path, ca: Ca,
                                 tmp_path: Path) -> None:
    with appliance() as fake:
        real_answer = fake.answer

        def tampered(key: Any, nonce: bytes) -> dict[str, Any]:
            good = real_answer(key, nonce)
            ev = bytearray(base64.b64decode(good["evidence"]))
            ev[0x90] ^= 0x80  # inside MEASUREMENT, under the report signature
            return {**good, "evidence": base64.b64encode(bytes(ev)).decode()}

        fake.answer = tampered  # type: ignore[method-assign]
        refused(cli(*start_args(fake, tmp_path, sim_dir, ca)), fake, "report-signature")


def test_certificate_swapped_right_after_the_first_fetch(
    sim_dir: Path, cli: Cli, ca: Ca, tmp_path: Path
) -> None:
    """A genuine second appliance (same TEE, same measurement, its own key) takes over the port after the first
    handshake: its evidence would verify, but it is not the certificate that was fetched, so it gets nothing."""
    fake = FakeAppliance(sim_dir)
    impostor = new_key()
    fake.swap_to = (build_certificate(impostor, fake.bootstrap_cert.subject, lambda rd: fake.evidence(rd)[0]),
                    impostor)
    fake.swap_after_connections = 1
    fake.answer_key = impostor
    with fake.running():
        result = cli(*start_args(fake, tmp_path, sim_dir, ca))
        refused(result, fake, "tls-pin")
        assert fake.requests == []  # the pinned connection closed before writing a byte of the request
        assert fake.connections >= 2


def test_certificate_swapped_after_verification(sim_dir: Path, cli: Cli, ca: Ca, tmp_path: Path) -> None:
    """The swap happens once the attestation was answered, and the server closes every connection so that the
    next request needs a new handshake: the pin is checked on every connection, not only the first."""
    fake = FakeAppliance(sim_dir)
    impostor = new_key()
    fake.swap_to = (build_certificate(impostor, fake.bootstrap_cert.subject, lambda rd: fake.evidence(rd)[0]),
                    impostor)
    fake.swap_after_attestation = True
    fake.close_connections = True
    with fake.running():
        result = cli(*start_args(fake, tmp_path, sim_dir, ca))
        refused(result, fake, "tls-pin")
        assert fake.paths() == ["GET /attestation"]
        assert "GET /bootstrap/status" in lines(result)[-1]
