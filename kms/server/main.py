"""`kms-server`: parse the configuration once, then serve the Flask app with gunicorn (threaded workers).

The `kms-server` console script is `bootstrap.launcher:main`, which calls `serve` here either at once or after
the bootstrap server's handover; `python -m kms.server.main` is the direct start without bootstrap support.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from gunicorn.app.base import BaseApplication
from gunicorn.config import Config as GunicornConfig

from kms.config import ConfigError, ServerConfig, load
from kms.server.tls import p12_to_pem_files
from kms.store.base import StoreError

if TYPE_CHECKING:
    from attestation.tee import TeeProvider


class _Gunicorn(BaseApplication):
    def __init__(self, config: ServerConfig, options: dict) -> None:
        self.kms_config = config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        # Called in each worker after fork: every process opens its own database pool.
        from kms.server.app import create_app

        app = create_app(self.kms_config)
        # Tests and supervisors wait for this line instead of sleeping.
        logging.getLogger("kms").info("KMS worker %d ready", os.getpid())
        return app


def gunicorn_options(config: ServerConfig, cert: tuple[str, str] | None) -> dict:
    options = {
        "bind": f"{config.hostname}:{config.port}",
        "workers": config.workers,
        "worker_class": "gthread",
        "threads": config.threads,
        "keepalive": 75,
        "timeout": 120,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning" if config.quiet else "info",
        "proc_name": "kms-server",
        "preload_app": False,
    }
    if "control_socket_disable" in GunicornConfig().settings:  # gunicorn >= 25: no control socket for a KMS
        options["control_socket_disable"] = True
    if cert is not None:
        options["certfile"], options["keyfile"] = cert
    return options


def setup_logging(argv: Sequence[str] | None = None) -> None:
    """One log format on stderr for the launcher, the bootstrap server and gunicorn's arbiter and workers."""
    logging.basicConfig(
        level=logging.WARNING if "--quiet" in (argv or sys.argv) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _fail(message: object) -> NoReturn:
    print(f"kms-server: error: {message}", file=sys.stderr)
    raise SystemExit(2) from None


def load_or_exit(argv: Sequence[str] | None = None) -> ServerConfig:
    """The configuration, or exit 2 with the reason on stderr."""
    try:
        return load(argv)
    except ConfigError as exc:
        _fail(exc)


def database_error(config: ServerConfig) -> str | None:
    """Why the database `config` names cannot be opened (one line), or None. Opens and closes it, clearing it
    when config.clear_database is set. The bootstrap server uses it to refuse a database it could not start on."""
    from kms.store.factory import open_store

    try:
        open_store(config).close()
    except (ConfigError, StoreError, OSError) as exc:  # OSError: e.g. a SQLite directory that cannot be created
        return str(exc)
    return None


def serve(
    config: ServerConfig, cert_files: tuple[str, str] | None = None, *, tee_provider: TeeProvider | None = None
) -> None:
    """Run the KMS on config.port (gunicorn, threaded workers) until it stops: the one start-up both paths of
    `kms-server` share, the direct start (`main`) and the handover from the bootstrap server (bootstrap.launcher).

    cert_files: (PEM certificate chain, PEM private key) to serve HTTPS with instead of --https-p12-file. The
    caller owns them and must keep them until serve returns; serve also returns in every gunicorn worker when it
    exits (workers are forks of this process), so a caller cleans up only in the process that called it.
    tee_provider: the provider to build the /tee/certificate RA-TLS certificate with when config.tee is set (the
    bootstrap launcher passes the one it already has); built from the configuration otherwise.
    Exits 2 with a message on a configuration, database, TLS or TEE error.
    """
    # Fail now, in the parent, if the database cannot be opened (clear it once, not in every worker).
    problem = database_error(config)
    if problem is not None:
        _fail(problem)
    config.clear_database = False
    arbiter = os.getpid()
    tmp = None
    listener = None
    try:
        if cert_files is None and config.https_p12_file:
            tmp = _private_directory()
            try:
                cert_files = p12_to_pem_files(Path(config.https_p12_file), config.https_p12_password, Path(tmp.name))
            except ValueError as exc:
                _fail(exc)
        if cert_files is not None:
            config.tls_cert_file = cert_files[0]
            if config.tee != "none":
                tmp = tmp or _private_directory()
                config.tee_certificate_file = _tee_certificate(config, cert_files, Path(tmp.name), tee_provider)
        if config.socket_server_start:
            # A child process of its own, started before gunicorn forks (see kms.server.socket_server).
            from kms.server.socket_server import ListenerProcess, SocketServerError

            try:
                listener = ListenerProcess.start(config)
            except SocketServerError as exc:
                _fail(exc)
        logging.getLogger("kms").info(
            "KMS listening on %s://%s:%d (database %s)",
            config.scheme, config.hostname, config.port, config.database_type,
        )
        _Gunicorn(config, gunicorn_options(config, cert_files)).run()
    finally:
        # Gunicorn workers are forks of this process and unwind through here when they exit: only the arbiter
        # owns the TLS files and the listener (a worker removing them would break every later worker).
        if os.getpid() == arbiter:
            if tmp is not None:
                tmp.cleanup()
            if listener is not None and not listener.stop():
                raise SystemExit(1)  # the listener had died on its own: a failure the supervisor must see


def _private_directory() -> tempfile.TemporaryDirectory[str]:
    """A directory only this user can enter, for the PEM copies of the TLS key gunicorn's workers load."""
    tmp = tempfile.TemporaryDirectory(prefix="kms-tls-")
    os.chmod(tmp.name, 0o700)
    return tmp


def _tee_certificate(
    config: ServerConfig, cert_files: tuple[str, str], directory: Path, provider: TeeProvider | None
) -> str | None:
    """The RA-TLS certificate of the TLS key for GET /tee/certificate, built once here in the arbiter so that
    every worker serves the same one (and the simulated TEE creates its PKI files before any fork)."""
    from attestation.errors import AttestationError
    from kms.server.tee_routes import build_provider, write_ratls_certificate

    try:
        return write_ratls_certificate(provider or build_provider(config), *cert_files, directory)
    except (AttestationError, OSError, ValueError) as exc:
        _fail(f"--tee {config.tee}: cannot build the RA-TLS certificate of the TLS key: {exc}")


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m kms.server.main`: the direct start, without the bootstrap server (see bootstrap.launcher)."""
    setup_logging(argv)
    serve(load_or_exit(argv))


if __name__ == "__main__":
    main()
