"""Flask application factory: one app per worker process, holding one Kms engine (store, cache, streams)."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from kms.config import ServerConfig
from kms.core.kms import Kms, ServerIdentity
from kms.server import info_routes, kmip_routes
from kms.server.errors import plain
from kms.store.factory import open_store

log = logging.getLogger("kms.http")
VERSION = "0.1.0"


def create_app(config: ServerConfig, kms: Kms | None = None) -> Flask:
    app = Flask("kms")
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    if kms is None:
        identity = ServerIdentity(vendor_identification=config.vendor_identification, version=VERSION)
        kms = Kms(open_store(config), identity=identity, cache_capacity=config.cache_capacity)
    app.extensions["kms"] = kms
    app.extensions["kms_config"] = config
    app.extensions["kms_version_json"] = json.dumps(info_routes.version_string(VERSION))
    app.register_blueprint(kmip_routes.bp)
    app.register_blueprint(info_routes.bp)
    if config.database_type == "sqlite-enc":
        from kms.server import sqlite_enc_routes  # POST /new_database and the per-request KmsDatabaseSecret

        sqlite_enc_routes.init_app(app, kms.store)
    if config.tee != "none":
        from kms.server import tee_routes  # imports the attestation library: only when a TEE is configured

        tee_routes.init_app(app, config)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return plain(exc.code or 500, f"{exc.name}: {exc.description}")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")  # traceback to the log, never to the client
        return plain(500, "Internal server error")

    return app
