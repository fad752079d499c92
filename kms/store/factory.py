"""Choose and open the store named by the configuration."""

from __future__ import annotations

from kms.config import ConfigError, ServerConfig
from kms.store.base import ObjectStore
from kms.store.sql import SqlStore


def open_store(config: ServerConfig) -> ObjectStore:
    if config.database_type == "sqlite":
        return SqlStore.sqlite(config.sqlite_path, clear=config.clear_database)
    raise ConfigError(f"database type {config.database_type!r} is not supported")
