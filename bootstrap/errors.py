"""Typed refusals of the bootstrap server, each mapped once to its HTTP status by bootstrap.app.

Messages are one line, name what is wrong and never contain a secret (no database secret, password or key)."""

from __future__ import annotations


class BootstrapError(Exception):
    """A refused bootstrap call; `status` is its HTTP status."""

    status = 400


class ProvisioningError(BootstrapError):
    """Bad input: not JSON, a missing or malformed field, a certificate that does not fit the API key (400)."""

    status = 400


class NotOwnerError(BootstrapError):
    """A provisioning call without the owner's client certificate (403)."""

    status = 403


class StateError(BootstrapError):
    """A call out of order or repeated (409)."""

    status = 409


class ServerFaultError(BootstrapError):
    """The server could not do its part (e.g. write the sealed configuration) (500); the state is unchanged."""

    status = 500


class TeeFaultError(BootstrapError):
    """The TEE could not produce evidence (503)."""

    status = 503
