"""Server configuration: one `ServerConfig`, filled from flags, then `KMS_*` environment, then the TOML file.

Names follow the Cosmian KMS documentation so existing deployments carry over: `--database-type`,
`--sqlite-path`, `--port`, `--hostname`, `--root-data-path`, `--https-p12-file`, `--default-username`, ... with
env `KMS_DATABASE_TYPE`, ... and the TOML file `/etc/cosmian_kms/server.toml` (or the path in
`COSMIAN_KMS_CONF`), whose keys are either flat (`port = 9998`) or grouped as in the Cosmian file
(`[http] port = 9998`, `[db] database_type = "sqlite"`). Parsed once at start-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_TOML = "/etc/cosmian_kms/server.toml"
DATABASE_TYPES = ("sqlite", "sqlite-enc", "postgresql", "mysql", "redis-findex")
# Backends on a database server: they need --database-url.
SERVER_DATABASE_TYPES = ("postgresql", "mysql", "redis-findex")


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names it."""


@dataclasses.dataclass(slots=True)
class ServerConfig:
    database_type: str = "sqlite"
    database_url: str | None = None
    sqlite_path: str = "./sqlite-data"
    clear_database: bool = False
    redis_master_password: str | None = None
    redis_findex_label: str | None = None
    # Secret from which the keys that wrap every stored object are derived (encryption at rest); never logged.
    database_secret: str | None = None
    port: int = 9998
    hostname: str = "0.0.0.0"
    root_data_path: str = "./root-data"
    https_p12_file: str | None = None
    https_p12_password: str | None = None
    default_username: str = "admin"
    force_default_username: bool = False
    vendor_identification: str = "cosmian"
    workers: int = 0  # 0: one per CPU core, at most 8
    threads: int = 4
    max_request_bytes: int = 64 * 1024 * 1024
    cache_capacity: int = 10_000
    quiet: bool = False
    socket_server_start: bool = False
    socket_server_port: int = 5696
    socket_server_hostname: str = "0.0.0.0"
    authority_cert_file: str | None = None  # PEM CA(s) of the client certificates the socket listener accepts

    @property
    def scheme(self) -> str:
        return "https" if self.https_p12_file else "http"


@dataclasses.dataclass(frozen=True, slots=True)
class _Option:
    name: str  # field name; flag is --name-with-dashes, env KMS_NAME
    kind: type
    help: str
    toml_sections: tuple[str, ...] = ()


_OPTIONS: tuple[_Option, ...] = (
    _Option("database_type", str, f"database backend: {', '.join(DATABASE_TYPES)} (default sqlite)", ("db",)),
    _Option("database_url", str, "database URL, for server databases", ("db",)),
    _Option("sqlite_path", str, "directory of the SQLite database (default ./sqlite-data)", ("db",)),
    _Option("clear_database", bool, "erase the database at start (irreversible)", ("db",)),
    _Option(
        "redis_master_password",
        str,
        "redis-findex: password from which the keys encrypting Redis values and the index are derived",
        ("db",),
    ),
    _Option(
        "redis_findex_label",
        str,
        "redis-findex: public label mixed into the index keys; changing it re-keys the index at start",
        ("db",),
    ),
    _Option(
        "database_secret",
        str,
        "secret from which the keys wrapping every stored object and index entry are derived (encryption at rest)",
        ("db",),
    ),
    _Option("port", int, "port to listen on (default 9998)", ("http",)),
    _Option("hostname", str, "address to listen on (default 0.0.0.0)", ("http",)),
    _Option("root_data_path", str, "directory for the server's own files (default ./root-data)", ("workspace",)),
    _Option("https_p12_file", str, "PKCS#12 file with the HTTPS certificate and key; enables HTTPS", ("http",)),
    _Option("https_p12_password", str, "password of the HTTPS PKCS#12 file", ("http",)),
    _Option("default_username", str, "user of unauthenticated requests (default admin)", ("auth",)),
    _Option("force_default_username", bool, "map every request to the default user", ("auth",)),
    _Option("vendor_identification", str, "vendor identification of vendor attributes (default cosmian)", ()),
    _Option("workers", int, "server processes (default 0: one per CPU core, at most 8)", ("http",)),
    _Option("threads", int, "threads per process (default 4)", ("http",)),
    _Option("max_request_bytes", int, "largest accepted request body in bytes (default 64 MiB)", ("http",)),
    _Option("cache_capacity", int, "decoded objects kept in memory per process (default 10000)", ()),
    _Option("quiet", bool, "log only warnings and errors", ()),
    _Option(
        "socket_server_start",
        bool,
        "also serve binary KMIP (TTLV) over TLS on a socket, as PyKMIP clients expect; needs --https-p12-file",
        ("socket_server",),
    ),
    _Option("socket_server_port", int, "port of the KMIP socket listener (default 5696)", ("socket_server",)),
    _Option("socket_server_hostname", str, "address of the KMIP socket listener (default 0.0.0.0)", ("socket_server",)),
    _Option(
        "authority_cert_file",
        str,
        "PEM file of the CA(s) that issue client certificates: the KMIP socket listener then requires one",
        ("http",),
    ),
)


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: expected true or false, got {value!r}")


def _coerce(opt: _Option, value: Any, origin: str) -> Any:
    if opt.kind is bool:
        return _parse_bool(f"{origin} {opt.name}", value)
    if opt.kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin} {opt.name}: expected an integer, got {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{origin} {opt.name}: expected a string, got {value!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kms-server",
        description="Zero-trust KMIP 2.1 key management server. Every option may also be given as an environment "
        "variable KMS_<OPTION> (e.g. KMS_PORT) or in the TOML file /etc/cosmian_kms/server.toml (or the file "
        "named by COSMIAN_KMS_CONF). Flags win over the environment, which wins over the file.",
    )
    for opt in _OPTIONS:
        flag = "--" + opt.name.replace("_", "-")
        if opt.kind is bool:
            parser.add_argument(flag, dest=opt.name, action="store_const", const=True, default=None, help=opt.help)
        else:
            parser.add_argument(flag, dest=opt.name, type=opt.kind, default=None, help=opt.help)
    return parser


def _toml_values(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from None
    values: dict[str, Any] = {}
    for opt in _OPTIONS:
        if opt.name in data:
            values[opt.name] = data[opt.name]
        for section in opt.toml_sections:
            sub = data.get(section)
            if isinstance(sub, dict) and opt.name in sub:
                values[opt.name] = sub[opt.name]
    return values


def load(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ServerConfig:
    env = os.environ if env is None else env
    args = build_parser().parse_args(argv)
    toml_path = env.get("COSMIAN_KMS_CONF")
    toml: dict[str, Any] = {}
    if toml_path:
        if not Path(toml_path).is_file():
            raise ConfigError(f"COSMIAN_KMS_CONF names {toml_path}, which does not exist")
        toml = _toml_values(Path(toml_path))
    elif Path(DEFAULT_TOML).is_file():
        toml = _toml_values(Path(DEFAULT_TOML))
    config = ServerConfig()
    for opt in _OPTIONS:
        value = getattr(args, opt.name)
        origin = "--" + opt.name.replace("_", "-")
        if value is None:
            env_name = "KMS_" + opt.name.upper()
            if env_name in env:
                value, origin = env[env_name], env_name
            elif opt.name in toml:
                value, origin = toml[opt.name], f"{toml_path or DEFAULT_TOML}:"
        if value is not None:
            setattr(config, opt.name, _coerce(opt, value, origin))
    validate(config)
    return config


def validate(config: ServerConfig) -> None:
    if config.database_type not in DATABASE_TYPES:
        raise ConfigError(
            f"--database-type {config.database_type!r} is not supported; use one of {', '.join(DATABASE_TYPES)}"
        )
    if config.database_type in SERVER_DATABASE_TYPES and not config.database_url:
        raise ConfigError(f"--database-type {config.database_type} needs --database-url")
    if config.database_type == "redis-findex" and not (config.redis_master_password and config.redis_findex_label):
        raise ConfigError("--database-type redis-findex needs --redis-master-password and --redis-findex-label")
    if not 0 < config.port < 65536:
        raise ConfigError(f"--port {config.port} is not a TCP port")
    if config.workers < 0 or config.threads < 1:
        raise ConfigError("--workers must be 0 (one per core) or more, --threads at least 1")
    if config.workers == 0:
        config.workers = max(1, min(8, os.cpu_count() or 1))
    if config.https_p12_file and not Path(config.https_p12_file).is_file():
        raise ConfigError(f"--https-p12-file {config.https_p12_file} does not exist")
    if not config.default_username:
        raise ConfigError("--default-username may not be empty")
    if not 0 < config.socket_server_port < 65536:
        raise ConfigError(f"--socket-server-port {config.socket_server_port} is not a TCP port")
    if config.socket_server_start and not config.https_p12_file:
        # Keys travel in these messages: KMIP over TCP is only ever served over TLS.
        raise ConfigError("--socket-server-start requires --https-p12-file (the KMIP socket is TLS only)")
    if config.database_type == "sqlite-enc":
        if config.socket_server_start:
            # Each sqlite-enc request names its database and key in the KmsDatabaseSecret HTTP header; binary KMIP
            # on a socket has no place for it.
            raise ConfigError("--socket-server-start is not available with --database-type sqlite-enc: KMIP over "
                              "the socket cannot carry the KmsDatabaseSecret header each request needs")
        if config.database_secret:
            raise ConfigError("--database-secret does not apply to sqlite-enc: each group's database is encrypted "
                              "with the secret its clients send (POST /new_database creates one)")
    if config.authority_cert_file and not Path(config.authority_cert_file).is_file():
        raise ConfigError(f"--authority-cert-file {config.authority_cert_file} does not exist")
