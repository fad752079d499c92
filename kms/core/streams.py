"""Server-side state of multi-part crypto operations (KMIP InitIndicator / CorrelationValue / FinalIndicator).

A stream lives in the memory of the process that started it, keyed by a random correlation value and bound to
the user and key that started it. Streams expire after a while and their number is bounded, so abandoned
streams cannot exhaust memory. (HTTP keep-alive keeps one client on one worker; see the README.)
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

from kms.kmip.enums import Operation, ResultReason
from kms.kmip.errors import KmipError

MAX_STREAMS = 1024
STREAM_TTL_SECONDS = 600


@dataclasses.dataclass(slots=True)
class Stream:
    operation: Operation
    uid: str
    user: str
    state: object  # the crypto stream object (kms.crypto)
    expires: float


class StreamRegistry:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._streams: OrderedDict[bytes, Stream] = OrderedDict()

    def open(self, operation: Operation, uid: str, user: str, state: object) -> bytes:
        token = secrets.token_bytes(16)
        now = self.clock()
        with self._lock:
            self._expire(now)
            if len(self._streams) >= MAX_STREAMS:
                self._streams.popitem(last=False)
            self._streams[token] = Stream(operation, uid, user, state, now + STREAM_TTL_SECONDS)
        return token

    def get(self, token: bytes, operation: Operation, user: str) -> Stream:
        now = self.clock()
        with self._lock:
            self._expire(now)
            stream = self._streams.get(token)
            if stream is None or stream.user != user or stream.operation != operation:
                raise KmipError(
                    ResultReason.InvalidCorrelationValue, "unknown or expired correlation value for this operation"
                )
            stream.expires = now + STREAM_TTL_SECONDS
            return stream

    def close(self, token: bytes) -> None:
        with self._lock:
            self._streams.pop(token, None)

    def _expire(self, now: float) -> None:
        expired = [k for k, s in self._streams.items() if s.expires <= now]
        for k in expired:
            del self._streams[k]
