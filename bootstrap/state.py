"""The provisioning state machine of the bootstrap server (bootstrap/PROTOCOL.md):

    waiting-certificate --POST /certificate (or /pkcs12 + /pkcs12-password)--> waiting-database
    waiting-database    --POST /database--------------------------------------> ready
    ready               --POST /start-----------------------------------------> started

POST /csr is allowed in waiting-certificate only, as often as wanted (same key, new CSR); POST /pkcs12 may be
repeated there too (the last upload wins) until its password opens it. Everything else out of order, repeated, or
after /start is a StateError (409) and changes nothing.

Each step runs under one lock, from the state check through the validation of the input to the transition, so two
concurrent calls cannot both pass the check: the second sees the new state. A step whose validation fails
(ProvisioningError, 400) leaves state and data unchanged. /start seals before it moves to "started": a configuration
that cannot be sealed leaves the server "ready", to be retried.
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from bootstrap.errors import StateError
from bootstrap.provisioned import DatabaseSettings, ProvisionedConfig, TlsMaterial

T = TypeVar("T")


class State(enum.StrEnum):
    WAITING_CERTIFICATE = "waiting-certificate"
    WAITING_DATABASE = "waiting-database"
    READY = "ready"
    STARTED = "started"


_CERTIFICATE_CALLS = ("/csr", "/certificate", "/pkcs12", "/pkcs12-password")


def _refusal(call: str, state: State) -> str:
    """The one-line 409 message for `call` in `state`."""
    if state is State.STARTED:
        return f"{call}: the KMS is already started; the bootstrap server accepts no more provisioning"
    if call in _CERTIFICATE_CALLS:
        return f"{call}: the certificate is already set (it is set once per provisioning)"
    if call == "/database":
        if state is State.WAITING_CERTIFICATE:
            return "/database: set the certificate first (POST /certificate)"
        return "/database: the database is already configured (it is set once per provisioning)"
    if state is State.WAITING_CERTIFICATE:
        return f"{call}: not ready: the certificate and the database are missing"
    return f"{call}: not ready: the database is missing (POST /database)"


class Provisioning:
    """The state and what has been provisioned so far, for one run of the bootstrap server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = State.WAITING_CERTIFICATE
        self._tls: TlsMaterial | None = None
        self._database: DatabaseSettings | None = None
        self._pkcs12: bytes | None = None

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    @contextlib.contextmanager
    def _step(self, call: str, expected: State) -> Iterator[None]:
        with self._lock:
            if self._state is not expected:
                raise StateError(_refusal(call, self._state))
            yield

    def csr(self, build: Callable[[], T]) -> T:
        """Run `build` (make a CSR) if a certificate may still be set."""
        with self._step("/csr", State.WAITING_CERTIFICATE):
            return build()

    def set_certificate(self, validate: Callable[[], TlsMaterial]) -> None:
        """waiting-certificate -> waiting-database with the TLS material `validate` returns (or raises)."""
        with self._step("/certificate", State.WAITING_CERTIFICATE):
            self._tls = validate()
            self._pkcs12 = None
            self._state = State.WAITING_DATABASE

    def receive_pkcs12(self, read: Callable[[], bytes]) -> int:
        """Keep the PKCS#12 `read` returns until its password arrives (replaces an earlier upload); its size."""
        with self._step("/pkcs12", State.WAITING_CERTIFICATE):
            self._pkcs12 = read()
            return len(self._pkcs12)

    def set_pkcs12_password(self, open_pkcs12: Callable[[bytes], TlsMaterial]) -> None:
        """waiting-certificate -> waiting-database once `open_pkcs12` opens the uploaded PKCS#12; a wrong password
        keeps the upload so that the right one can follow."""
        with self._step("/pkcs12-password", State.WAITING_CERTIFICATE):
            if self._pkcs12 is None:
                raise StateError("/pkcs12-password: no PKCS#12 received yet (POST /pkcs12 first)")
            self._tls = open_pkcs12(self._pkcs12)
            self._pkcs12 = None
            self._state = State.WAITING_DATABASE

    def set_database(self, validate: Callable[[], DatabaseSettings]) -> None:
        """waiting-database -> ready with the settings `validate` returns (or raises)."""
        with self._step("/database", State.WAITING_DATABASE):
            self._database = validate()
            self._state = State.READY

    def start(self, seal: Callable[[ProvisionedConfig], None]) -> ProvisionedConfig:
        """ready -> started once `seal` has stored the provisioned configuration; returns it."""
        with self._step("/start", State.READY):
            assert self._tls is not None and self._database is not None
            provisioned = ProvisionedConfig(tls=self._tls, database=self._database)
            seal(provisioned)
            self._state = State.STARTED
            return provisioned
