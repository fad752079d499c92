"""`kms-server`: parse the configuration once, then serve the Flask app with gunicorn (threaded workers)."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.config import Config as GunicornConfig

from kms.config import ConfigError, ServerConfig, load
from kms.server.tls import p12_to_pem_files
from kms.store.base import StoreError


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


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(
        level=logging.WARNING if "--quiet" in (argv or sys.argv) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load(argv)
        # Fail now, in the parent, if the database cannot be opened (clear it once, not in every worker).
        from kms.store.factory import open_store

        open_store(config).close()
        config.clear_database = False
    except (ConfigError, StoreError) as exc:
        print(f"kms-server: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    cert = None
    tmp = None
    if config.https_p12_file:
        tmp = tempfile.TemporaryDirectory(prefix="kms-tls-")
        os.chmod(tmp.name, 0o700)
        try:
            cert = p12_to_pem_files(Path(config.https_p12_file), config.https_p12_password, Path(tmp.name))
        except ValueError as exc:
            print(f"kms-server: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    listener = None
    if config.socket_server_start:
        # A child process of its own, started before gunicorn forks (see kms.server.socket_server).
        from kms.server.socket_server import ListenerProcess, SocketServerError

        try:
            listener = ListenerProcess.start(config)
        except SocketServerError as exc:
            print(f"kms-server: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    logging.getLogger("kms").info(
        "KMS listening on %s://%s:%d (database %s)", config.scheme, config.hostname, config.port, config.database_type
    )
    arbiter = os.getpid()
    try:
        _Gunicorn(config, gunicorn_options(config, cert)).run()
    finally:
        # Gunicorn workers are forks of this process and unwind through here when they exit: only the arbiter
        # owns the TLS files and the listener (a worker removing them would break every later worker).
        if os.getpid() == arbiter:
            if tmp is not None:
                tmp.cleanup()
            if listener is not None and not listener.stop():
                raise SystemExit(1)  # the listener had died on its own: a failure the supervisor must see


if __name__ == "__main__":
    main()
