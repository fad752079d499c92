"""The provisioning state machine: every transition, every refusal (409), validation failures and sealing failures
that leave the state unchanged, and one winner when two calls race."""

from __future__ import annotations

import threading

import pytest

from bootstrap.errors import ProvisioningError, StateError
from bootstrap.provisioned import DatabaseSettings, ProvisionedConfig, TlsMaterial
from bootstrap.state import Provisioning, State

TLS = TlsMaterial(chain_pem="chain")
DB = DatabaseSettings(database_type="sqlite")


def _fail_validation() -> TlsMaterial:
    raise ProvisioningError("bad input")


def _ready() -> Provisioning:
    machine = Provisioning()
    machine.set_certificate(lambda: TLS)
    machine.set_database(lambda: DB)
    return machine


def test_happy_path_through_every_state() -> None:
    machine = Provisioning()
    assert machine.state is State.WAITING_CERTIFICATE
    assert machine.csr(lambda: "csr1") == "csr1"
    assert machine.csr(lambda: "csr2") == "csr2"  # repeated /csr allowed while waiting for the certificate
    machine.set_certificate(lambda: TLS)
    assert machine.state is State.WAITING_DATABASE
    machine.set_database(lambda: DB)
    assert machine.state is State.READY
    sealed: list[ProvisionedConfig] = []
    result = machine.start(sealed.append)
    assert machine.state is State.STARTED
    assert sealed == [result] and result == ProvisionedConfig(tls=TLS, database=DB)
    assert [s.value for s in State] == ["waiting-certificate", "waiting-database", "ready", "started"]


def test_pkcs12_path() -> None:
    machine = Provisioning()
    with pytest.raises(StateError, match="no PKCS#12 received"):
        machine.set_pkcs12_password(lambda data: TLS)
    assert machine.receive_pkcs12(lambda: b"first") == 5
    assert machine.receive_pkcs12(lambda: b"second!") == 7  # replaces
    seen: list[bytes] = []

    def wrong(data: bytes) -> TlsMaterial:
        seen.append(data)
        raise ProvisioningError("wrong password")

    with pytest.raises(ProvisioningError):
        machine.set_pkcs12_password(wrong)
    assert machine.state is State.WAITING_CERTIFICATE
    machine.set_pkcs12_password(lambda data: seen.append(data) or TlsMaterial(chain_pem="c", key_pem="k"))
    assert seen == [b"second!", b"second!"]
    assert machine.state is State.WAITING_DATABASE
    with pytest.raises(StateError):
        machine.set_pkcs12_password(lambda data: TLS)


@pytest.mark.parametrize(
    ("setup", "call", "fragment"),
    [
        ([], "database", "set the certificate first"),
        ([], "start", "the certificate and the database are missing"),
        (["certificate"], "certificate", "already set"),
        (["certificate"], "csr", "already set"),
        (["certificate"], "pkcs12", "already set"),
        (["certificate"], "pkcs12-password", "already set"),
        (["certificate"], "start", "the database is missing"),
        (["certificate", "database"], "database", "already configured"),
        (["certificate", "database"], "certificate", "already set"),
        (["certificate", "database"], "csr", "already set"),
        (["certificate", "database", "start"], "start", "already started"),
        (["certificate", "database", "start"], "csr", "already started"),
        (["certificate", "database", "start"], "database", "already started"),
        (["certificate", "database", "start"], "certificate", "already started"),
        (["certificate", "database", "start"], "pkcs12", "already started"),
    ],
)
def test_out_of_order_and_repeated_calls_are_refused_without_effect(
    setup: list[str], call: str, fragment: str
) -> None:
    machine = Provisioning()
    calls = {
        "csr": lambda: machine.csr(lambda: "csr"),
        "certificate": lambda: machine.set_certificate(lambda: TLS),
        "pkcs12": lambda: machine.receive_pkcs12(lambda: b"p12"),
        "pkcs12-password": lambda: machine.set_pkcs12_password(lambda data: TLS),
        "database": lambda: machine.set_database(lambda: DB),
        "start": lambda: machine.start(lambda provisioned: None),
    }
    for step in setup:
        calls[step]()
    before = machine.state
    with pytest.raises(StateError, match=fragment):
        calls[call]()
    assert machine.state is before


def test_failed_validation_changes_nothing() -> None:
    machine = Provisioning()
    with pytest.raises(ProvisioningError):
        machine.set_certificate(_fail_validation)
    assert machine.state is State.WAITING_CERTIFICATE
    machine.set_certificate(lambda: TLS)

    def bad_db() -> DatabaseSettings:
        raise ProvisioningError("unknown type")

    with pytest.raises(ProvisioningError):
        machine.set_database(bad_db)
    assert machine.state is State.WAITING_DATABASE


def test_a_failed_seal_leaves_the_server_ready() -> None:
    machine = _ready()

    def disk_full(provisioned: ProvisionedConfig) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        machine.start(disk_full)
    assert machine.state is State.READY
    machine.start(lambda provisioned: None)
    assert machine.state is State.STARTED


def test_concurrent_certificates_one_wins() -> None:
    """Both threads pass the barrier inside validation, while the first holds the step: the second must then see
    the new state (409), never store a second certificate."""
    machine = Provisioning()
    inside = threading.Event()
    release = threading.Event()
    results: list[str] = []

    def slow_validation() -> TlsMaterial:
        inside.set()
        assert release.wait(30)
        return TLS

    def first() -> None:
        machine.set_certificate(slow_validation)
        results.append("first ok")

    def second() -> None:
        try:
            machine.set_certificate(lambda: TlsMaterial(chain_pem="other"))
            results.append("second ok")
        except StateError:
            results.append("second refused")

    t1 = threading.Thread(target=first)
    t1.start()
    assert inside.wait(30)
    t2 = threading.Thread(target=second)
    t2.start()
    release.set()
    t1.join(30)
    t2.join(30)
    assert sorted(results) == ["first ok", "second refused"]
    sealed: list[ProvisionedConfig] = []
    machine.set_database(lambda: DB)
    machine.start(sealed.append)
    assert sealed[0].tls == TLS
