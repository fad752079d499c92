"""Client configuration: the same JSON file, fields and lookup order as Cosmian's `ckms`, so users keep theirs.

Lookup: `--conf PATH`, else `$KMS_CLI_CONF`, else `~/.cosmian/kms.json`. Only the default location is created
on first use (a fresh install must work out of the box); a path the user named explicitly must exist, because
silently creating it would hide a typo and send requests to the wrong server. Unknown fields are kept and
written back unchanged, so fields used by other versions of the tool (or by commands we do not implement yet)
survive a rewrite.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckms.errors import CliError

ENV_CONF = "KMS_CLI_CONF"
DEFAULT_URL = "http://0.0.0.0:9998"

# Fields we interpret; anything else in the file is carried through `extra`.
_STR_FIELDS = (
    "kms_server_url",
    "verified_cert",
    "kms_access_token",
    "ssl_client_pkcs12_path",
    "ssl_client_pkcs12_password",
    "kms_database_secret",
)
_DICT_FIELDS = ("oauth2_conf", "tee_conf")


def default_path() -> Path:
    return Path.home() / ".cosmian" / "kms.json"


@dataclass
class ClientConfig:
    kms_server_url: str = DEFAULT_URL
    accept_invalid_certs: bool = False
    verified_cert: str | None = None
    kms_access_token: str | None = None
    ssl_client_pkcs12_path: str | None = None
    ssl_client_pkcs12_password: str | None = None
    kms_database_secret: str | None = None
    oauth2_conf: dict[str, Any] | None = None
    tee_conf: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    present: frozenset[str] = frozenset()  # keys the file had, so an explicit `false` is written back too

    # ------------------------------------------------------------------------------------------- loading

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> ClientConfig:
        where = f" in {path}" if path is not None else ""
        if not isinstance(data, dict):
            raise CliError(f"the configuration{where} must be a JSON object")
        if not isinstance(data.get("kms_server_url"), str) or not data["kms_server_url"]:
            raise CliError(f"kms_server_url is missing{where}")
        cfg = cls(path=path)
        for name in _STR_FIELDS:
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise CliError(f"{name}{where} must be a string")
            if value is not None:
                setattr(cfg, name, value)
        for name in _DICT_FIELDS:
            value = data.get(name)
            if value is not None and not isinstance(value, dict):
                raise CliError(f"{name}{where} must be a JSON object")
            setattr(cfg, name, value)
        aic = data.get("accept_invalid_certs", False)
        if aic is None:
            aic = False
        if not isinstance(aic, bool):
            raise CliError(f"accept_invalid_certs{where} must be true or false")
        cfg.accept_invalid_certs = aic
        known = {*_STR_FIELDS, *_DICT_FIELDS, "accept_invalid_certs"}
        cfg.extra = {k: v for k, v in data.items() if k not in known}
        cfg.present = frozenset(data)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The file content: known fields that are set, then the unknown ones exactly as read."""
        out: dict[str, Any] = {"kms_server_url": self.kms_server_url}
        if self.accept_invalid_certs or "accept_invalid_certs" in self.present:
            out["accept_invalid_certs"] = self.accept_invalid_certs
        for name in _STR_FIELDS[1:] + _DICT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    def save(self, path: Path | None = None) -> None:
        """Rewrite the file, keeping unknown fields; written to a sibling then renamed so a crash cannot truncate it."""
        target = path or self.path or default_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        # The file may hold a token or a PKCS#12 password: readable by its owner only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2)
            fh.write("\n")
        os.replace(tmp, target)
        self.path = target

    @property
    def pinned_cert(self) -> str | None:
        """PEM of the leaf certificate to pin: top-level `verified_cert`, or the 4.x `tee_conf.verified_cert`."""
        if self.verified_cert:
            return self.verified_cert
        if self.tee_conf and isinstance(self.tee_conf.get("verified_cert"), str):
            return self.tee_conf["verified_cert"]
        return None


def _read(path: Path) -> ClientConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read the configuration file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliError(f"the configuration file {path} is not valid JSON: {exc}") from None
    return ClientConfig.from_dict(data, path)


def resolve_path(conf: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """(path, explicit): explicit paths must exist; the default one is created when missing."""
    if conf:
        return Path(conf).expanduser(), True
    env = os.environ.get(ENV_CONF)
    if env:
        return Path(env).expanduser(), True
    return default_path(), False


def load(conf: str | os.PathLike[str] | None = None) -> ClientConfig:
    path, explicit = resolve_path(conf)
    if path.is_file():
        return _read(path)
    if path.exists():
        raise CliError(f"the configuration path {path} is not a file")
    if explicit:
        raise CliError(f"the configuration file {path} does not exist")
    cfg = ClientConfig(kms_server_url=DEFAULT_URL)
    try:
        cfg.save(path)
    except OSError as exc:
        raise CliError(f"cannot create the default configuration file {path}: {exc.strerror or exc}") from None
    return cfg
