"""The key hierarchy of spec/bootstrap.md §1: deterministic per sk, separated per purpose, valid P-256 keys, and a
random sk (no sealing) when the TEE offers no sealing key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from attestation.tee import Evidence
from attestation.tee.providers import SealingKeyUnavailableError
from attestation.tee.simulated import SimulatedTee
from bootstrap.keys import (
    HKDF_SALT,
    INFO_API_TLS,
    INFO_BOOTSTRAP_TLS,
    P256_ORDER,
    SEALING_LABEL,
    BootstrapKeys,
    derive_p256_key,
    derive_seal_key,
    keys_from_provider,
    scalar_from_okm,
)

SK = hashlib.sha256(b"test sk").digest()


def _scalar(key: ec.EllipticCurvePrivateKey) -> int:
    return key.private_numbers().private_value


def test_same_sk_same_keys() -> None:
    a, b = BootstrapKeys.from_sk(SK, sealed=True), BootstrapKeys.from_sk(SK, sealed=True)
    assert _scalar(a.api_key) == _scalar(b.api_key)
    assert _scalar(a.bootstrap_key) == _scalar(b.bootstrap_key)
    assert a.seal_key == b.seal_key


def test_each_purpose_and_each_sk_gets_its_own_key() -> None:
    keys = BootstrapKeys.from_sk(SK, sealed=True)
    other = BootstrapKeys.from_sk(hashlib.sha256(b"other sk").digest(), sealed=True)
    scalars = {_scalar(keys.api_key), _scalar(keys.bootstrap_key), _scalar(other.api_key), _scalar(other.bootstrap_key)}
    assert len(scalars) == 4
    assert keys.seal_key != other.seal_key
    assert keys.seal_key not in {s.to_bytes(32, "big") for s in scalars}


def test_scalar_is_hkdf_sha256_of_the_info_reduced_mod_n() -> None:
    """The derivation is the documented one (recomputed here independently), and yields valid P-256 keys."""
    for info in (INFO_BOOTSTRAP_TLS, INFO_API_TLS):
        okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=HKDF_SALT, info=info).derive(SK)
        key = derive_p256_key(SK, info)
        assert _scalar(key) == int.from_bytes(okm, "big") % P256_ORDER
        assert 0 < _scalar(key) < P256_ORDER
        assert isinstance(key.curve, ec.SECP256R1)
        signature = key.sign(b"m", ec.ECDSA(hashes.SHA256()))
        key.public_key().verify(signature, b"m", ec.ECDSA(hashes.SHA256()))
    assert P256_ORDER == 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    assert len(derive_seal_key(SK)) == 32


def test_zero_scalar_is_refused_and_values_are_reduced() -> None:
    with pytest.raises(ValueError, match="zero"):
        scalar_from_okm(P256_ORDER.to_bytes(48, "big"))
    with pytest.raises(ValueError, match="zero"):
        scalar_from_okm(bytes(48))
    assert scalar_from_okm((P256_ORDER + 5).to_bytes(48, "big")) == 5


def test_sk_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        derive_p256_key(b"short", INFO_API_TLS)


def test_keys_never_print() -> None:
    keys = BootstrapKeys.from_sk(SK, sealed=True)
    assert repr(keys) == "BootstrapKeys(sealed=True)"


def test_simulated_tee_keys_follow_the_measurement(tmp_path: Path) -> None:
    first = keys_from_provider(SimulatedTee(tmp_path, "sev-snp"))
    again = keys_from_provider(SimulatedTee(tmp_path, "sev-snp"))
    changed = keys_from_provider(SimulatedTee(tmp_path, "sev-snp", measurement=b"\x01" * 48))
    assert first.sealed and again.sealed
    assert _scalar(first.api_key) == _scalar(again.api_key)
    assert _scalar(first.api_key) != _scalar(changed.api_key)
    sim = SimulatedTee(tmp_path, "sev-snp")
    assert first.seal_key == derive_seal_key(sim.sealing_key(SEALING_LABEL))


class _NoSealingTee:
    """A TEE like TDX through configfs-tsm: quotes, but no sealing key."""

    kind = "tdx"

    def quote(self, report_data: bytes) -> Evidence:
        raise AssertionError("not used")

    def sealing_key(self, label: bytes) -> bytes:
        raise SealingKeyUnavailableError("no sealing key on this TEE")


def test_without_a_sealing_key_the_keys_are_random_and_not_sealed(caplog: pytest.LogCaptureFixture) -> None:
    a, b = keys_from_provider(_NoSealingTee()), keys_from_provider(_NoSealingTee())
    assert not a.sealed and not b.sealed
    assert _scalar(a.api_key) != _scalar(b.api_key)
    assert "a restart needs a new provisioning" in caplog.text
