"""Choose and open the store named by the configuration."""

from __future__ import annotations

from kms.config import ConfigError, ServerConfig
from kms.store.base import ObjectStore
from kms.store.encrypted import encrypt_at_rest
from kms.store.sql import SqlStore


def open_store(config: ServerConfig) -> ObjectStore:
    """The store to serve from. SQL backends are wrapped by kms.store.encrypted when a database secret is set
    (encrypt_at_rest also refuses an encrypted database opened without one); sqlite-enc picks and opens a store
    per request, from the secret each request carries (kms.store.sqlite_enc)."""
    if config.database_type == "sqlite":
        return encrypt_at_rest(SqlStore.sqlite(config.sqlite_path, clear=config.clear_database), config.database_secret)
    if config.database_type in ("postgresql", "mysql"):
        if not config.database_url:
            raise ConfigError(f"--database-type {config.database_type} needs --database-url")
        # One pooled connection per gunicorn thread, plus the health probe and the socket listener's.
        pool = max(4, config.threads + 2)
        store = SqlStore.server(config.database_type, config.database_url, clear=config.clear_database, pool_size=pool)
        return encrypt_at_rest(store, config.database_secret)
    if config.database_type == "sqlite-enc":
        from kms.store.sqlite_enc import SqliteEncStore

        return SqliteEncStore(config.sqlite_path, clear=config.clear_database)
    if config.database_type == "redis-findex":
        from kms.store.redis_findex import RedisFindexStore  # redis-py is only imported when used

        if not (config.database_url and config.redis_master_password and config.redis_findex_label):
            raise ConfigError(
                "--database-type redis-findex needs --database-url, --redis-master-password and --redis-findex-label"
            )
        # Already encrypted under the master password; a database secret, when set, wraps it once more (the
        # bootstrap server provisions one for every backend alike).
        store = RedisFindexStore(
            config.database_url,
            config.redis_master_password,
            config.redis_findex_label,
            clear=config.clear_database,
            max_connections=max(16, config.threads * 4),
        )
        return encrypt_at_rest(store, config.database_secret)
    raise ConfigError(f"database type {config.database_type!r} is not supported")
