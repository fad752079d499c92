"""What the owner provisions: the database settings of POST /database, the TLS material of POST /certificate (or
/pkcs12), their validation, and the JSON form that is sealed to disk (bootstrap.sealing encrypts it).

Database types: the protocol names sqlite, sqlite-enc, postgresql, mysql and redis-findex (bootstrap/PROTOCOL.md).
A type the protocol does not know is refused as unknown; a known type this build cannot serve yet (kms.config.
DATABASE_TYPES) is refused as unsupported, before anything is stored, so /start can never launch a KMS that then
fails to open its database. Both are 400. Unknown fields are refused too (a mistyped "sqlite-path" must not be
silently ignored).

The database secret must be hex of at least 16 bytes (128 bits): the contract says hex, and a short secret would
make encryption at rest weak. It is kept in memory and in the sealed file only, and becomes --database-secret of
the KMS (kms.store.encrypted derives the keys wrapping every stored object from it). The same holds for the
Redis-Findex master password. Settings a server build would not know are kept sealed and reported (without their
value) instead of being dropped silently.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from bootstrap.errors import ProvisioningError
from bootstrap.sealing import SealedConfigError
from kms.config import DATABASE_TYPES, ServerConfig

log = logging.getLogger("kms.bootstrap")

PROTOCOL_DATABASE_TYPES = ("sqlite", "sqlite-enc", "postgresql", "mysql", "redis-findex")
_REQUIRED = {
    "sqlite": (),
    "sqlite-enc": (),
    "postgresql": ("database_url",),
    "mysql": ("database_url",),
    "redis-findex": ("database_url", "redis_master_password", "redis_findex_label"),
}
_TEXT_FIELDS = ("database_type", "database_url", "sqlite_path", "redis_master_password", "redis_findex_label",
                "database_secret")
_FIELDS = (*_TEXT_FIELDS, "clear_database")
MAX_FIELD_CHARS = 4096
MIN_SECRET_BYTES = 16
FORMAT = "zt-kms/provisioned-config/v1"


@dataclasses.dataclass(frozen=True)
class DatabaseSettings:
    database_type: str
    database_url: str | None = None
    sqlite_path: str | None = None
    redis_master_password: str | None = dataclasses.field(default=None, repr=False)
    redis_findex_label: str | None = None
    database_secret: str | None = dataclasses.field(default=None, repr=False)
    clear_database: bool = False

    @classmethod
    def from_request(cls, body: Any) -> DatabaseSettings:
        """Validate the JSON body of POST /database; ProvisioningError (400) naming the field otherwise."""
        if not isinstance(body, dict):
            raise ProvisioningError("the body must be a JSON object")
        unknown = sorted(set(body) - set(_FIELDS))
        if unknown:
            raise ProvisioningError(f"unknown field(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name in _TEXT_FIELDS:
            value = body.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ProvisioningError(f"{name} must be a string or null")
            if not value or len(value) > MAX_FIELD_CHARS:
                raise ProvisioningError(f"{name} must be a non-empty string of at most {MAX_FIELD_CHARS} characters")
            values[name] = value
        clear = body.get("clear_database")
        if clear is not None and not isinstance(clear, bool):
            raise ProvisioningError("clear_database must be true, false or null")
        values["clear_database"] = bool(clear)
        kind = values.get("database_type")
        if kind is None:
            raise ProvisioningError("database_type is required")
        if kind not in PROTOCOL_DATABASE_TYPES:
            raise ProvisioningError(
                f"unknown database_type {kind!r}; expected one of {', '.join(PROTOCOL_DATABASE_TYPES)}"
            )
        missing = [name for name in _REQUIRED[kind] if name not in values]
        if missing:
            raise ProvisioningError(f"database_type {kind} needs {', '.join(missing)}")
        if kind not in DATABASE_TYPES:
            raise ProvisioningError(
                f"database_type {kind} is not supported by this server yet; supported: {', '.join(DATABASE_TYPES)}"
            )
        secret = values.get("database_secret")
        if secret is not None:
            try:
                raw = bytes.fromhex(secret)
            except ValueError:
                raise ProvisioningError("database_secret must be hexadecimal") from None
            if len(raw) < MIN_SECRET_BYTES:
                raise ProvisioningError(f"database_secret must be at least {MIN_SECRET_BYTES} bytes")
        return cls(**values)

    def apply_to(self, config: ServerConfig, *, clear: bool) -> None:
        """Set the database options of `config`; `clear` decides clear_database (only on the first start after a
        provisioning: a reboot that unseals must never erase the database again)."""
        config.database_type = self.database_type
        config.database_url = self.database_url
        if self.sqlite_path is not None:
            config.sqlite_path = self.sqlite_path
        config.clear_database = clear and self.clear_database
        names = {f.name for f in dataclasses.fields(config)}
        for optional in ("redis_master_password", "redis_findex_label", "database_secret"):
            value = getattr(self, optional)
            if value is None:
                continue
            if optional in names:
                setattr(config, optional, value)
            else:
                log.warning(
                    "a %s was provisioned but this server has no such setting yet: it is kept sealed, unused "
                    "(the database is not encrypted at rest)",
                    optional.replace("_", " "),
                )

    def describe(self) -> str:
        """What may be logged: the type and where, never a secret (a URL may hold a password: not logged)."""
        where = f", path {self.sqlite_path}" if self.sqlite_path and self.database_type.startswith("sqlite") else ""
        secret = ", with a database secret" if self.database_secret else ""
        return f"type {self.database_type}{where}{secret}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TlsMaterial:
    """The main server's certificate chain (PEM, leaf first) and, only for the PKCS#12 path, its private key PEM;
    None means the API key derived from sk, which is never stored."""

    chain_pem: str
    key_pem: str | None = dataclasses.field(default=None, repr=False)

    @property
    def derived_key(self) -> bool:
        return self.key_pem is None


@dataclasses.dataclass(frozen=True)
class ProvisionedConfig:
    tls: TlsMaterial
    database: DatabaseSettings

    def to_bytes(self) -> bytes:
        """The plaintext that is sealed. clear_database is sealed as False: it applies to the first start only."""
        database = dataclasses.replace(self.database, clear_database=False)
        return json.dumps(
            {"format": FORMAT, "tls": dataclasses.asdict(self.tls), "database": database.to_json()}
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ProvisionedConfig:
        """Parse an unsealed plaintext; SealedConfigError when it is not this format (e.g. a newer version)."""
        try:
            value = json.loads(data)
            if value.get("format") != FORMAT:
                raise SealedConfigError(f"the sealed configuration is not in the format {FORMAT}")
            tls = TlsMaterial(**value["tls"])
            database = DatabaseSettings(**value["database"])
        except SealedConfigError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError):
            raise SealedConfigError("the unsealed configuration is not valid") from None
        if not isinstance(tls.chain_pem, str) or database.database_type not in PROTOCOL_DATABASE_TYPES:
            raise SealedConfigError("the unsealed configuration is not valid")
        return cls(tls=tls, database=database)
