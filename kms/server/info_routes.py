"""Server information: GET /version (a JSON string, as the Cosmian server answers) and GET /health."""

from __future__ import annotations

import json
import time

from cryptography.hazmat.backends.openssl import backend as openssl_backend
from flask import Blueprint, Response, current_app

from kms.store.base import StoreError

bp = Blueprint("info", __name__)


def version_string(version: str) -> str:
    return f"{version} ({openssl_backend.openssl_version_text()})"


@bp.get("/version")
def version() -> Response:
    return Response(current_app.extensions["kms_version_json"], status=200, content_type="application/json")


@bp.get("/health")
def health() -> Response:
    kms = current_app.extensions["kms"]
    start = time.perf_counter()
    try:
        kms.store.check()
        db = {"name": kms.store.__class__.__name__, "status": "UP"}
        status = "UP"
    except StoreError as exc:
        db = {"name": kms.store.__class__.__name__, "status": "DOWN", "message": str(exc)}
        status = "DOWN"
    body = {
        "status": status,
        "latency_ms": round((time.perf_counter() - start) * 1000, 3),
        "dependencies": {"database": db},
    }
    return Response(json.dumps(body), status=200 if status == "UP" else 503, content_type="application/json")
