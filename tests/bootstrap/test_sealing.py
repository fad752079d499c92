"""The sealed configuration: round trip, and every way it must fail (typed, never a crash)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from attestation.tee.simulated import SimulatedTee
from bootstrap.keys import keys_from_provider
from bootstrap.provisioned import DatabaseSettings, ProvisionedConfig, TlsMaterial
from bootstrap.sealing import AAD, MAGIC, SealedConfigError, read_sealed, seal, sealed_path, unseal, write_sealed

KEY = bytes(range(32))
PLAINTEXT = b'{"secret": "0123456789abcdef"}'


def test_round_trip(tmp_path: Path) -> None:
    path = sealed_path(tmp_path / "root")
    write_sealed(path, KEY, PLAINTEXT)
    assert read_sealed(path, KEY) == PLAINTEXT
    assert path == tmp_path / "root" / "bootstrap" / "sealed-config"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert PLAINTEXT not in path.read_bytes()
    assert b"0123456789abcdef" not in path.read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == ["sealed-config"]  # no temporary file left


def test_rewrite_replaces_and_uses_a_fresh_nonce(tmp_path: Path) -> None:
    path = sealed_path(tmp_path)
    write_sealed(path, KEY, PLAINTEXT)
    first = path.read_bytes()
    write_sealed(path, KEY, PLAINTEXT)
    assert path.read_bytes() != first
    write_sealed(path, KEY, b"other")
    assert read_sealed(path, KEY) == b"other"


def test_missing_file_is_none(tmp_path: Path) -> None:
    assert read_sealed(sealed_path(tmp_path), KEY) is None


def test_wrong_key_fails_cleanly(tmp_path: Path) -> None:
    path = sealed_path(tmp_path)
    write_sealed(path, KEY, PLAINTEXT)
    with pytest.raises(SealedConfigError, match="another image, measurement or platform"):
        read_sealed(path, bytes(32))


def test_another_measurement_cannot_unseal(tmp_path: Path) -> None:
    sim_dir = tmp_path / "sim"
    keys = keys_from_provider(SimulatedTee(sim_dir, "sev-snp"))
    other = keys_from_provider(SimulatedTee(sim_dir, "sev-snp", measurement=b"\x02" * 48))
    other_platform = keys_from_provider(SimulatedTee(tmp_path / "other-sim", "sev-snp"))
    path = sealed_path(tmp_path / "root")
    write_sealed(path, keys.seal_key, PLAINTEXT)
    assert read_sealed(path, keys_from_provider(SimulatedTee(sim_dir, "sev-snp")).seal_key) == PLAINTEXT
    for wrong in (other, other_platform):
        with pytest.raises(SealedConfigError):
            read_sealed(path, wrong.seal_key)


@pytest.mark.parametrize("position", [0, len(MAGIC), len(MAGIC) + 12, -1])
def test_any_altered_byte_fails(tmp_path: Path, position: int) -> None:
    path = sealed_path(tmp_path)
    write_sealed(path, KEY, PLAINTEXT)
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SealedConfigError):
        read_sealed(path, KEY)


def test_truncated_empty_and_foreign_files_fail(tmp_path: Path) -> None:
    blob = seal(KEY, PLAINTEXT)
    for bad in (b"", blob[:10], blob[:-1], b"PK\x03\x04" + blob[4:], MAGIC + os.urandom(40)):
        with pytest.raises(SealedConfigError):
            unseal(KEY, bad)


def test_aad_names_the_format_version() -> None:
    """A blob sealed with the same key under another AAD (another format version) does not open."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    foreign = MAGIC + nonce + AESGCM(KEY).encrypt(nonce, PLAINTEXT, b"zt-kms/bootstrap/sealed-config/v2")
    with pytest.raises(SealedConfigError):
        unseal(KEY, foreign)
    assert b"v1" in AAD


def test_unreadable_file_is_a_typed_error(tmp_path: Path) -> None:
    path = sealed_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.mkdir()  # a directory where the file should be
    with pytest.raises(SealedConfigError, match="cannot read"):
        read_sealed(path, KEY)


def test_provisioned_config_round_trip_and_clear_database_is_not_sealed() -> None:
    config = ProvisionedConfig(
        tls=TlsMaterial(chain_pem="-----BEGIN CERTIFICATE-----\n"),
        database=DatabaseSettings(database_type="sqlite", sqlite_path="/d", database_secret="ab" * 16,
                                  clear_database=True),
    )
    back = ProvisionedConfig.from_bytes(config.to_bytes())
    assert back.database.clear_database is False
    assert back.database.database_secret == "ab" * 16
    assert back.tls == config.tls
    assert "ab" * 16 not in repr(back)
    for bad in (b"not json", b"{}", b'{"format": "zt-kms/provisioned-config/v9"}', b"[1]"):
        with pytest.raises(SealedConfigError):
            ProvisionedConfig.from_bytes(bad)
