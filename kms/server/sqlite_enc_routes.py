"""HTTP side of sqlite-enc: `POST /new_database`, and the `KmsDatabaseSecret` header on every KMIP request.

Registered only when the database type is sqlite-enc (elsewhere /new_database is a 404). Before a request to a
blueprint that touches the database (`kmip`, and `access` once it exists), the header is decoded and the group's
store bound to the request (kms.store.sqlite_enc.SqliteEncStore.bind); it is unbound, and the keys dropped, when
the request is torn down. A request that cannot be bound is answered at once, nothing read or changed:
401 for a missing, unreadable or unknown secret, 403 for a wrong key (messages as Cosmian words them).
"""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack

from flask import Blueprint, Flask, Response, current_app, g, request

from kms.server.errors import plain
from kms.store.base import StoreError
from kms.store.sqlite_enc import SECRET_HEADER, DatabaseSecretError, SqliteEncStore, decode_secret

log = logging.getLogger("kms.http")
bp = Blueprint("sqlite_enc", __name__)
# Blueprints whose routes read or write objects: their requests need a database secret.
DATABASE_BLUEPRINTS = frozenset({"kmip", "access"})


def _store() -> SqliteEncStore:
    return current_app.extensions["kms_sqlite_enc"]


@bp.post("/new_database")
def new_database() -> Response:
    """A new group database; the answer (a JSON string) is its secret, which the server does not keep."""
    try:
        secret = _store().new_database()
    except StoreError as exc:
        log.error("cannot create a sqlite-enc database: %s", exc)
        return plain(500, f"cannot create a new database: {exc}")
    log.info("new sqlite-enc database group %d", secret.group_id)
    return Response(json.dumps(secret.encode()), status=200, content_type="application/json")


def _bind_request() -> Response | None:
    if request.blueprint not in DATABASE_BLUEPRINTS:
        return None  # /version, /health, /new_database, /tee/..., and 404s need no database
    stack = ExitStack()
    try:
        secret = decode_secret(request.headers.get(SECRET_HEADER))
        stack.enter_context(_store().bind(secret))
    except DatabaseSecretError as exc:
        stack.close()
        return plain(exc.status, exc.message)
    except StoreError as exc:
        stack.close()
        log.error("cannot open a sqlite-enc database: %s", exc)
        return plain(503, "the key store is unavailable; retry later")
    g.kms_sqlite_enc = stack
    return None


def _unbind_request(_exc: BaseException | None) -> None:
    stack: ExitStack | None = g.pop("kms_sqlite_enc", None)
    if stack is not None:
        stack.close()


def init_app(app: Flask, store: object) -> None:
    if not isinstance(store, SqliteEncStore):
        raise TypeError(f"sqlite-enc needs the engine to run on a SqliteEncStore, not {type(store).__name__}")
    app.extensions["kms_sqlite_enc"] = store
    app.register_blueprint(bp)
    app.before_request(_bind_request)
    app.teardown_request(_unbind_request)
