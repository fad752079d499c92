"""Hostile or broken input over the socket: the connection that sent it is answered or dropped, never the server.

A message that cannot be framed or decoded gets an InvalidMessage ResponseMessage, then the server closes that
connection (what follows can no longer be framed). A declared length above the limit is refused from the header
alone. Clients without a certificate from the configured authority are refused during the TLS handshake.
"""

from __future__ import annotations

import socket
import ssl
import struct
from pathlib import Path

import pytest

from kms.kmip import binary
from kms.kmip.enums import Operation, ResultReason, ResultStatus
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType
from tests.socket.conftest import SocketKms, closed_by_server, exchange, read_message

MESSAGE_HEADER = struct.pack(">I", (Tag.RequestMessage << 8) | ItemType.Structure)


def _int(tag: int, value: int) -> TTLV:
    return TTLV(tag, ItemType.Integer, value)


def discover_versions() -> TTLV:
    """A small valid request: DiscoverVersions at KMIP 1.4."""
    return TTLV.struct(
        Tag.RequestMessage,
        [
            TTLV.struct(
                Tag.RequestHeader,
                [
                    TTLV.struct(
                        Tag.ProtocolVersion, [_int(Tag.ProtocolVersionMajor, 1), _int(Tag.ProtocolVersionMinor, 4)]
                    ),
                    _int(Tag.BatchCount, 1),
                ],
            ),
            TTLV.struct(
                Tag.BatchItem,
                [
                    TTLV(Tag.Operation, ItemType.Enumeration, Operation.DiscoverVersions),
                    TTLV.struct(Tag.RequestPayload),
                ],
            ),
        ],
    )


def assert_served(response: TTLV) -> None:
    item = response.find(Tag.BatchItem)
    assert item.find(Tag.Operation).value == Operation.DiscoverVersions
    assert item.find(Tag.ResultStatus).value == ResultStatus.Success


def assert_invalid_message(response: TTLV, fragment: str) -> None:
    assert response.tag == Tag.ResponseMessage
    item = response.find(Tag.BatchItem)
    assert item.find(Tag.ResultStatus).value == ResultStatus.OperationFailed
    assert item.find(Tag.ResultReason).value == ResultReason.InvalidMessage
    assert fragment in item.find(Tag.ResultMessage).value


def test_several_messages_on_one_connection(socket_kms: SocketKms) -> None:
    with socket_kms.connect() as conn:
        for _ in range(3):
            assert_served(exchange(conn, discover_versions()))
        # Two messages sent back to back, then both answers read: framing relies on the lengths only.
        conn.sendall(binary.encode(discover_versions()) * 2)
        assert_served(read_message(conn))
        assert_served(read_message(conn))


@pytest.mark.parametrize("cut", [4, 20], ids=["in-header", "in-body"])
def test_truncated_message_then_close(socket_kms: SocketKms, cut: int) -> None:
    """Part of a message, then the client stops writing: the server drops the connection without an answer, and
    goes on serving other connections."""
    message = binary.encode(discover_versions())
    with socket_kms.connect() as conn:
        conn.sendall(message[:cut])
        socket.socket.shutdown(conn, socket.SHUT_WR)  # TCP half-close below TLS: the server reads end of file
        assert closed_by_server(conn)
    with socket_kms.connect() as other:
        assert_served(exchange(other, discover_versions()))


def test_huge_declared_length_is_refused_without_reading(socket_kms: SocketKms) -> None:
    with socket_kms.connect() as conn:
        # Only the header is sent: the server must answer from it, not wait for 4 GiB.
        conn.sendall(MESSAGE_HEADER + struct.pack(">I", 0xFFFFFFF8))
        assert_invalid_message(read_message(conn), "exceeds the")
        assert closed_by_server(conn)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"GET / HTTP/1.1\r\nHost: kms\r\n\r\n", "RequestMessage"),  # not TTLV at all
        (b"\x42\x00\x7b\x01\x00\x00\x00\x00", "RequestMessage"),  # a ResponseMessage header
        (MESSAGE_HEADER + struct.pack(">I", 16) + b"\x42\x00\x77\xee\x00\x00\x00\x00" + bytes(8), "item type"),
        (MESSAGE_HEADER + struct.pack(">I", 16) + b"\x42\x00\x0d\x02\x00\x00\x00\x08" + bytes(8), "length"),
    ],
    ids=["http", "response-header", "unknown-type", "bad-integer-length"],
)
def test_garbage_gets_invalid_message_then_close(socket_kms: SocketKms, data: bytes, fragment: str) -> None:
    with socket_kms.connect() as conn:
        conn.sendall(data)
        assert_invalid_message(read_message(conn), fragment)
        assert closed_by_server(conn)


def test_well_framed_but_invalid_request_keeps_the_connection(socket_kms: SocketKms) -> None:
    """A message that decodes is framed correctly: the engine answers it and the connection goes on."""
    with socket_kms.connect() as conn:
        response = exchange(conn, TTLV.struct(Tag.RequestMessage))
        item = response.find(Tag.BatchItem)
        assert item.find(Tag.ResultStatus).value == ResultStatus.OperationFailed
        assert_served(exchange(conn, discover_versions()))


def test_a_stalled_connection_does_not_block_others(socket_kms: SocketKms) -> None:
    message = binary.encode(discover_versions())
    with socket_kms.connect() as stalled:
        stalled.sendall(message[:12])  # half a header's worth more is never sent
        with socket_kms.connect() as other:
            assert_served(exchange(other, discover_versions()))
        stalled.sendall(message[12:])  # the stalled one completes later and is served too
        assert_served(read_message(stalled))


def _refused(socket_kms: SocketKms, cert: tuple[Path, Path] | None) -> bool:
    """True if the server refuses the TLS session: the handshake fails, or (TLS 1.3, where the client finishes
    its handshake before the server has checked its certificate) the first read reports the server's alert."""
    try:
        conn = socket_kms.connect(cert, client_cert=cert is not None)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    with conn:
        try:
            conn.sendall(binary.encode(discover_versions()))
            return conn.recv(8) == b""
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True


def test_client_without_certificate_is_refused(socket_kms: SocketKms) -> None:
    assert _refused(socket_kms, None)


def test_certificate_from_another_authority_is_refused(socket_kms: SocketKms) -> None:
    assert _refused(socket_kms, (socket_kms.pki.stranger_cert, socket_kms.pki.stranger_key))


def test_certificate_not_for_client_auth_is_refused(socket_kms: SocketKms) -> None:
    assert _refused(socket_kms, (socket_kms.pki.server_eku_cert, socket_kms.pki.server_eku_key))


def test_the_client_certificate_is_accepted(socket_kms: SocketKms) -> None:
    assert not _refused(socket_kms, (socket_kms.pki.client_cert, socket_kms.pki.client_key))
