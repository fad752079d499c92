"""The bootstrap and TEE options: defaults, the three sources (flag, KMS_* env, TOML), and every refusal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kms.config import DEFAULT_BOOTSTRAP_SUBJECT, ConfigError, load

OPTIONS = (
    "--use-bootstrap-server", "--bootstrap-server-subject", "--bootstrap-server-expiration-days",
    "--bootstrap-server-port", "--bootstrap-owner-key-sha256", "--tee", "--tee-sim-dir", "--tee-sim-measurement",
    "--tee-sim-format", "--tee-sim-host-data",
)
SIM = ["--use-bootstrap-server", "--tee", "simulated", "--tee-sim-dir", "/sim"]


def test_defaults() -> None:
    config = load([], env={})
    assert (config.use_bootstrap_server, config.bootstrap_server_subject, config.bootstrap_server_expiration_days,
            config.bootstrap_server_port, config.tee, config.tee_sim_format) == (
        False, DEFAULT_BOOTSTRAP_SUBJECT, 365, 9998, "none", "sev-snp")
    assert DEFAULT_BOOTSTRAP_SUBJECT == "CN=cosmian.kms,O=Cosmian Tech,C=FR,L=Paris,ST=Ile-de-France"
    assert config.bootstrap_owner_key_sha256 is None and config.tee_sim_dir is None


def test_flags_env_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "server.toml"
    toml.write_text(
        '[bootstrap_server]\nuse_bootstrap_server = true\nbootstrap_server_port = 7000\n'
        'bootstrap_server_expiration_days = 30\n[tee]\ntee = "simulated"\ntee_sim_dir = "/toml/sim"\n'
        'tee_sim_format = "tdx"\n'
    )
    env = {"COSMIAN_KMS_CONF": str(toml), "KMS_TEE_SIM_MEASUREMENT": "AB" * 48, "KMS_BOOTSTRAP_SERVER_PORT": "7001"}
    config = load(["--bootstrap-server-port", "7002", "--tee-sim-host-data", "cd" * 32], env=env)
    assert config.use_bootstrap_server and config.tee == "simulated" and config.tee_sim_dir == "/toml/sim"
    assert config.bootstrap_server_port == 7002 and config.bootstrap_server_expiration_days == 30
    assert config.tee_sim_format == "tdx"
    assert config.tee_sim_measurement == "ab" * 48  # normalised
    assert config.tee_sim_host_data == "cd" * 32
    owner = load([*SIM, "--bootstrap-owner-key-sha256", "EF" * 32], env={})
    assert owner.bootstrap_owner_key_sha256 == "ef" * 32


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--tee", "sev"], "--tee 'sev' is not one of"),
        (["--use-bootstrap-server"], "--use-bootstrap-server needs a TEE"),
        (["--use-bootstrap-server", "--tee", "simulated"], "--tee simulated needs --tee-sim-dir"),
        ([*SIM, "--tee-sim-format", "nitro"], "--tee-sim-format 'nitro'"),
        ([*SIM, "--tee-sim-measurement", "zz"], "--tee-sim-measurement: expected hexadecimal"),
        ([*SIM, "--tee-sim-measurement", "00" * 32], "expected 48 bytes"),
        ([*SIM, "--tee-sim-format", "sgx", "--tee-sim-measurement", "00" * 48], "expected 32 bytes"),
        ([*SIM, "--tee-sim-format", "sgx", "--tee-sim-host-data", "00" * 32], "SGX has no HOST_DATA"),
        ([*SIM, "--tee-sim-host-data", "00" * 48], "expected 32 bytes"),
        ([*SIM, "--tee-sim-format", "tdx", "--tee-sim-host-data", "00" * 40], "expected 32 or 48 bytes"),
        ([*SIM, "--bootstrap-owner-key-sha256", "00" * 31], "--bootstrap-owner-key-sha256: expected 32 bytes"),
        ([*SIM, "--bootstrap-server-port", "0"], "--bootstrap-server-port 0 is not a TCP port"),
        ([*SIM, "--bootstrap-server-expiration-days", "0"], "between 1 and 3650"),
        ([*SIM, "--bootstrap-server-subject", "not a name"], "not an RFC 4514 name"),
        ([*SIM, "--bootstrap-server-subject", ""], "may not be empty"),
        (["--tee-sim-dir", "/sim"], "--tee-sim-dir only apply with --tee simulated"),
        (["--tee", "auto", "--tee-sim-measurement", "00" * 48], "only apply with --tee simulated"),
        (["--bootstrap-owner-key-sha256", "00" * 32], "only applies with --use-bootstrap-server"),
        (["--tee", "simulated", "--tee-sim-dir", "/sim"], "--tee needs HTTPS"),
        (["--socket-server-start"], "--socket-server-start requires --https-p12-file"),
    ],
)
def test_refusals_name_the_option(argv: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(argv, env={})
    assert fragment in str(info.value)


def test_p12_and_bootstrap_exclude_each_other(tmp_path: Path) -> None:
    p12 = tmp_path / "server.p12"
    p12.write_bytes(b"not read at load time")
    with pytest.raises(ConfigError, match="does not apply with --use-bootstrap-server"):
        load([*SIM, "--https-p12-file", str(p12)], env={})
    direct = load(["--tee", "simulated", "--tee-sim-dir", "/sim", "--https-p12-file", str(p12)], env={})
    assert direct.tee == "simulated" and not direct.use_bootstrap_server


def test_the_socket_listener_may_run_in_bootstrap_mode() -> None:
    """It serves the provisioned certificate after the handover (bootstrap.launcher writes it a PKCS#12)."""
    assert load([*SIM, "--socket-server-start"], env={}).socket_server_start


def test_help_documents_every_new_option() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kms.server.main", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in OPTIONS:
        assert option in out, option
    assert "HOST_DATA" in out and "simulated" in out
