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
TEE_CHOICES = ("none", "auto", "simulated", "sev-snp", "tdx", "sgx")
TEE_SIM_FORMATS = ("sev-snp", "tdx", "sgx")
DEFAULT_BOOTSTRAP_SUBJECT = "CN=cosmian.kms,O=Cosmian Tech,C=FR,L=Paris,ST=Ile-de-France"
# Sizes the simulated TEE reports: MEASUREMENT (SNP) / MRTD (TDX) are 48 bytes, MRENCLAVE (SGX) 32.
_SIM_MEASUREMENT_BYTES = {"sev-snp": 48, "tdx": 48, "sgx": 32}


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
    use_bootstrap_server: bool = False
    bootstrap_server_subject: str = DEFAULT_BOOTSTRAP_SUBJECT
    bootstrap_server_expiration_days: int = 365
    bootstrap_server_port: int = 9998
    bootstrap_owner_key_sha256: str | None = None  # hex SHA-256 of the owner's client certificate SPKI
    tee: str = "none"
    tee_sim_dir: str | None = None
    tee_sim_measurement: str | None = None  # hex
    tee_sim_format: str = "sev-snp"
    tee_sim_host_data: str | None = None  # hex: SNP HOST_DATA (32 bytes) / TDX MRCONFIGID (32 or 48 bytes)
    # Set by the server at start-up, never by the user (no flag): the PEM chain TLS serves, whose leaf key the
    # /tee routes bind their evidence to, and the RA-TLS certificate of that key that GET /tee/certificate returns.
    tls_cert_file: str | None = None
    tee_certificate_file: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.https_p12_file or self.tls_cert_file else "http"


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
    _Option(
        "use_bootstrap_server",
        bool,
        "start in bootstrap mode: an attested HTTPS server (RA-TLS) on --bootstrap-server-port through which the "
        "owner provisions the API certificate and the database, then the KMS starts; needs --tee. A configuration "
        "sealed by an earlier provisioning of the same image is unsealed and the KMS starts directly",
        ("bootstrap_server",),
    ),
    _Option(
        "bootstrap_server_subject",
        str,
        f"RFC 4514 subject of the bootstrap RA-TLS certificate (default {DEFAULT_BOOTSTRAP_SUBJECT})",
        ("bootstrap_server",),
    ),
    _Option(
        "bootstrap_server_expiration_days",
        int,
        "validity of the bootstrap RA-TLS certificate in days (default 365)",
        ("bootstrap_server",),
    ),
    _Option("bootstrap_server_port", int, "port of the bootstrap server (default 9998)", ("bootstrap_server",)),
    _Option(
        "bootstrap_owner_key_sha256",
        str,
        "hex SHA-256 of the SubjectPublicKeyInfo (DER) of the owner's TLS client certificate: only that client may "
        "provision (POST calls); the TEE's HOST_DATA (SEV-SNP) / MRCONFIGID (TDX) sets it too when non-zero",
        ("bootstrap_server",),
    ),
    _Option(
        "tee",
        str,
        f"TEE providing attestation and sealing: {', '.join(TEE_CHOICES)} (default none). auto detects the real "
        "TEE of this machine; simulated is for tests and demos. Adds GET /tee/attestation and /tee/certificate",
        ("tee",),
    ),
    _Option("tee_sim_dir", str, "directory of the simulated TEE's vendor PKI and platform secret", ("tee",)),
    _Option(
        "tee_sim_measurement",
        str,
        "hex launch measurement of the simulated guest (48 bytes for sev-snp and tdx, 32 for sgx; default: a fixed "
        "value)",
        ("tee",),
    ),
    _Option(
        "tee_sim_format",
        str,
        f"evidence format of the simulated TEE: {', '.join(TEE_SIM_FORMATS)} (default sev-snp)",
        ("tee",),
    ),
    _Option(
        "tee_sim_host_data",
        str,
        "hex HOST_DATA (sev-snp, 32 bytes) or MRCONFIGID (tdx, 32 or 48 bytes) of the simulated guest, e.g. the "
        "owner key hash for owner binding",
        ("tee",),
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
    if config.socket_server_start and not (config.https_p12_file or config.use_bootstrap_server):
        # Keys travel in these messages: KMIP over TCP is only ever served over TLS. (In bootstrap mode the
        # provisioned certificate serves it.)
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
    _validate_tee(config)
    _validate_bootstrap(config)


def _hex(value: str, flag: str, sizes: tuple[int, ...]) -> str:
    """`value` as lower-case hex of one of `sizes` bytes, else ConfigError naming the flag."""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ConfigError(f"{flag}: expected hexadecimal, got {value!r}") from None
    if len(raw) not in sizes:
        expected = " or ".join(str(n) for n in sizes)
        raise ConfigError(f"{flag}: expected {expected} bytes ({expected} x 2 hex digits), got {len(raw)}")
    return raw.hex()


def _validate_tee(config: ServerConfig) -> None:
    if config.tee not in TEE_CHOICES:
        raise ConfigError(f"--tee {config.tee!r} is not one of {', '.join(TEE_CHOICES)}")
    if config.tee_sim_format not in TEE_SIM_FORMATS:
        raise ConfigError(f"--tee-sim-format {config.tee_sim_format!r} is not one of {', '.join(TEE_SIM_FORMATS)}")
    simulated_only = {
        "--tee-sim-dir": config.tee_sim_dir,
        "--tee-sim-measurement": config.tee_sim_measurement,
        "--tee-sim-host-data": config.tee_sim_host_data,
    }
    if config.tee != "simulated":
        # A simulated measurement silently ignored would let an operator believe it is in force.
        given = [flag for flag, value in simulated_only.items() if value]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply with --tee simulated")
        return
    if not config.tee_sim_dir:
        raise ConfigError("--tee simulated needs --tee-sim-dir (the directory of the simulated vendor PKI)")
    fmt = config.tee_sim_format
    if config.tee_sim_measurement:
        config.tee_sim_measurement = _hex(
            config.tee_sim_measurement, "--tee-sim-measurement", (_SIM_MEASUREMENT_BYTES[fmt],)
        )
    if config.tee_sim_host_data:
        if fmt == "sgx":
            raise ConfigError("--tee-sim-host-data: SGX has no HOST_DATA/MRCONFIGID")
        sizes = (32,) if fmt == "sev-snp" else (32, 48)
        config.tee_sim_host_data = _hex(config.tee_sim_host_data, "--tee-sim-host-data", sizes)


def _validate_bootstrap(config: ServerConfig) -> None:
    if not 0 < config.bootstrap_server_port < 65536:
        raise ConfigError(f"--bootstrap-server-port {config.bootstrap_server_port} is not a TCP port")
    if not 1 <= config.bootstrap_server_expiration_days <= 3650:
        raise ConfigError("--bootstrap-server-expiration-days must be between 1 and 3650")
    from cryptography import x509

    try:
        subject = x509.Name.from_rfc4514_string(config.bootstrap_server_subject)
    except ValueError as exc:
        raise ConfigError(f"--bootstrap-server-subject is not an RFC 4514 name: {exc}") from None
    if not list(subject):
        raise ConfigError("--bootstrap-server-subject may not be empty")
    if config.bootstrap_owner_key_sha256:
        config.bootstrap_owner_key_sha256 = _hex(
            config.bootstrap_owner_key_sha256, "--bootstrap-owner-key-sha256", (32,)
        )
    if not config.use_bootstrap_server:
        if config.bootstrap_owner_key_sha256:
            raise ConfigError("--bootstrap-owner-key-sha256 only applies with --use-bootstrap-server")
        if config.tee != "none" and not config.https_p12_file:
            # The /tee routes bind their evidence to the TLS key: over plain HTTP there is nothing to bind to.
            raise ConfigError("--tee needs HTTPS (--https-p12-file) or --use-bootstrap-server")
        return
    if config.tee == "none":
        # Without a TEE there is no sealing key and no quote: nothing the owner could verify before provisioning.
        raise ConfigError("--use-bootstrap-server needs a TEE: --tee auto|sev-snp|tdx|sgx (or simulated for tests)")
    if config.https_p12_file:
        raise ConfigError(
            "--https-p12-file does not apply with --use-bootstrap-server: the owner provisions the "
            "certificate through the bootstrap server"
        )
