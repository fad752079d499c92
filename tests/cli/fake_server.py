"""A scripted HTTP server standing in for the KMS, to test the client's side of the protocol without a real server.

It answers from a table the test fills: `/version`, and per-operation handlers for `/kmip/2_1` that receive the
decoded request TTLV. Every request is recorded so tests can check exactly what `ckms` sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kms.kmip import json_codec, registry, schema
from kms.kmip.enums import Operation
from kms.kmip.ttlv import PSEUDO_BASE_RESPONSE, TTLV


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


def kmip_reply(operation: Operation, response: Any) -> Reply:
    ttlv = schema.encode(response, PSEUDO_BASE_RESPONSE + operation)
    return Reply(200, json_codec.dumps(ttlv).encode())


def text_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), "text/html; charset=utf-8")


Handler = Callable[[TTLV], Reply]


@dataclass
class FakeKms:
    version: str = "4.99.0-fake"
    handlers: dict[Operation, Handler] = field(default_factory=dict)
    requests: list[tuple[str, TTLV | None, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def handle(self, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        if path == "/version":
            self.requests.append((path, None, headers))
            return Reply(200, f'"{self.version}"'.encode())
        if path != "/kmip/2_1":
            return text_reply(404, "<html><body>Not Found</body></html>")
        item = json_codec.loads(body)
        self.requests.append((path, item, headers))
        pseudo = registry.operation_of_pseudo_tag(item.tag)
        if pseudo is None or pseudo[0] not in self.handlers:
            return text_reply(422, f"Invalid Request: unsupported {registry.tag_name(item.tag)}")
        return self.handlers[pseudo[0]](item)


@contextmanager
def serve(fake: FakeKms) -> Iterator[FakeKms]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def do_GET(self) -> None:
            self._reply(fake.handle(self.path, b"", dict(self.headers)))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self._reply(fake.handle(self.path, self.rfile.read(length), dict(self.headers)))

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
