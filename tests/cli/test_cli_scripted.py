"""`ckms` run as a subprocess against a scripted server: exact output lines, exact requests, error handling.

These pin what the client sends and prints independently of the real server, so a regression is attributed
to the right side of the wire.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kms.kmip import json_codec, schema
from kms.kmip.attributes import Attributes
from kms.kmip.enums import CryptographicAlgorithm, KeyFormatType, ObjectType, Operation
from kms.kmip.objects import KeyBlock, SymmetricKey
from kms.kmip.payloads import (
    CreateRequest,
    CreateResponse,
    GetResponse,
    ImportRequest,
    ImportResponse,
    LocateRequest,
    LocateResponse,
    RevokeRequest,
    UidResponse,
)
from kms.kmip.tags import Tag
from kms.kmip.ttlv import PSEUDO_BASE_RESPONSE, TTLV, ItemType
from tests.cli.conftest import Runner, assert_one_error, run_ckms, write_conf
from tests.cli.fake_server import FakeKms, Reply, kmip_reply, serve, text_reply

KEY = bytes(range(32))


@pytest.fixture
def fake() -> Iterator[FakeKms]:
    with serve(FakeKms()) as f:
        yield f


@pytest.fixture
def ckms(fake: FakeKms, ckms_at: Callable[[str], Runner]) -> Runner:
    return ckms_at(fake.url)


def _sent(fake: FakeKms, op: Operation, cls: type) -> list:
    out = []
    for path, item, _ in fake.requests:
        if path == "/kmip/2_1" and item is not None and item.tag == 0x1000000 + op:
            out.append(schema.decode(cls, item))
    return out


def _tag_values(attrs: Attributes) -> list[list[str]]:
    return [
        json.loads(va.attribute_value.value)
        for va in attrs.vendor_attributes
        if va.vendor_identification == "cosmian" and va.attribute_name == "tag"
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------------- basics


def test_server_version_prints_the_bare_string(fake: FakeKms, ckms: Runner) -> None:
    r = ckms("server-version")
    assert (r.returncode, r.stdout, r.stderr) == (0, "4.99.0-fake\n", "")
    assert ckms("server", "version").stdout == "4.99.0-fake\n"


def test_create_sends_cosmian_create_and_prints_id_and_tags(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.Create] = lambda _item: kmip_reply(
        Operation.Create, CreateResponse(ObjectType.SymmetricKey, "uid-1")
    )
    r = ckms("sym", "keys", "create", "--number-of-bits", "256", "--algorithm", "aes", "--tag", "my-file-key")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "The symmetric key was successfully generated.\n\t  Unique identifier: uid-1\n\n  Tags:\n    - my-file-key\n"
    )
    (req,) = _sent(fake, Operation.Create, CreateRequest)
    a = req.attributes
    assert req.object_type == ObjectType.SymmetricKey
    assert (a.cryptographic_algorithm, a.cryptographic_length, a.cryptographic_usage_mask) == (
        CryptographicAlgorithm.AES,
        256,
        0x3C,
    )
    assert a.key_format_type == KeyFormatType.TransparentSymmetricKey
    assert a.object_type == ObjectType.SymmetricKey
    assert a.unique_identifier is None
    assert _tag_values(a) == [["my-file-key"]]


def test_create_with_id_chacha_and_no_tags(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.Create] = lambda _item: kmip_reply(
        Operation.Create, CreateResponse(ObjectType.SymmetricKey, "my-id")
    )
    r = ckms("sym", "keys", "create", "-a", "chacha20", "-l", "256", "--sensitive", "my-id")
    assert r.stdout == "The symmetric key was successfully generated.\n\t  Unique identifier: my-id\n"
    (req,) = _sent(fake, Operation.Create, CreateRequest)
    assert req.attributes.unique_identifier == "my-id"
    assert req.attributes.cryptographic_algorithm == CryptographicAlgorithm.ChaCha20
    assert req.attributes.sensitive is True
    assert _tag_values(req.attributes) == []


def test_create_from_bytes_is_an_import(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.Import] = lambda _item: kmip_reply(Operation.Import, ImportResponse("imp-1"))
    r = ckms("sym", "keys", "create", "-k", base64.b64encode(KEY).decode(), "-t", "a", "-t", "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("The symmetric key was successfully generated.\n\t  Unique identifier: imp-1\n")
    assert r.stdout.endswith("  Tags:\n    - a\n    - b\n")
    (req,) = _sent(fake, Operation.Import, ImportRequest)
    assert req.unique_identifier == ""
    assert req.object.key_block.value().material_bytes() == KEY
    assert req.attributes.cryptographic_length == 256
    assert _tag_values(req.attributes) == [["a", "b"]]


def test_json_output_mode(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.Create] = lambda _item: kmip_reply(
        Operation.Create, CreateResponse(ObjectType.SymmetricKey, "uid-1")
    )
    r = ckms("sym", "keys", "create", "-t", "x", env={"KMS_CLI_FORMAT": "json"})
    data = json.loads(r.stdout)
    assert data["unique_identifier"] == "uid-1" and data["tags"] == ["x"]


def test_json_flag_dumps_protocol_on_stderr_only(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.Destroy] = lambda _item: kmip_reply(Operation.Destroy, UidResponse("u"))
    r = ckms("--json", "sym", "keys", "destroy", "-k", "u")
    assert r.stdout == "Successfully destroyed the key.\n\t  Unique identifier: u\n"
    assert '"tag": "Destroy"' in r.stderr and '"tag": "DestroyResponse"' in r.stderr


def test_access_token_is_sent_as_bearer(fake: FakeKms, tmp_path: Path, home: Path, workdir: Path) -> None:
    conf = write_conf(tmp_path / "tok.json", fake.url, kms_access_token="secret-token")
    r = run_ckms(["server-version"], cwd=workdir, home=home, conf=conf)
    assert r.returncode == 0
    headers = {k.lower(): v for k, v in fake.requests[-1][2].items()}
    assert headers["authorization"] == "Bearer secret-token"


def test_default_config_is_created_on_first_use(fake: FakeKms, home: Path, workdir: Path) -> None:
    r = run_ckms(["--url", fake.url, "server-version"], cwd=workdir, home=home, conf=None)
    assert r.returncode == 0, r.stderr
    assert json.loads((home / ".cosmian" / "kms.json").read_text()) == {"kms_server_url": "http://0.0.0.0:9998"}


# ---------------------------------------------------------------------------------------------- errors


def test_server_error_text_is_shown_on_one_line(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.Destroy] = lambda _item: text_reply(422, "Item not found: nope\n")
    r = ckms("sym", "keys", "destroy", "-k", "nope")
    assert assert_one_error(r) == "ERROR: Item not found: nope"
    assert r.stdout == ""


def test_html_error_page_becomes_a_status_line(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.Destroy] = lambda _item: Reply(404, b"<html>nope</html>", "text/html")
    assert_one_error(ckms("sym", "keys", "destroy", "-k", "x"), "HTTP 404")


def test_unreadable_response(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.Destroy] = lambda _item: Reply(200, b"{garbage")
    assert_one_error(ckms("sym", "keys", "destroy", "-k", "x"), "unreadable Destroy response")


@pytest.mark.parametrize(
    "args",
    [
        ["sym", "keys", "export", "out.json"],
        ["sym", "keys", "revoke", "because"],
        ["sym", "keys", "destroy"],
        ["sym", "keys", "re-key"],
    ],
)
def test_missing_id_and_tag(fake: FakeKms, ckms: Runner, args: list[str]) -> None:
    r = ckms(*args)
    assert assert_one_error(r) == "ERROR: Either --key-id or one or more --tag must be specified"
    assert fake.requests == []


def test_missing_id_and_tag_for_files(ckms: Runner, workdir: Path) -> None:
    (workdir / "a.bin").write_bytes(b"x")
    for verb in ("encrypt", "decrypt"):
        r = ckms("sym", verb, "a.bin")
        assert assert_one_error(r) == "ERROR: Either --key-id or one or more --tag must be specified"


def test_missing_id_for_attributes(ckms: Runner) -> None:
    r = ckms("attributes", "get")
    assert assert_one_error(r) == "ERROR: Either --id or one or more --tag must be specified"


def test_server_down(ckms_at: Callable[[str], Runner]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    line = assert_one_error(ckms_at(url)("sym", "keys", "create"))
    assert url in line and "refused" in line


def test_missing_explicit_config(home: Path, workdir: Path, tmp_path: Path) -> None:
    r = run_ckms(["server-version"], cwd=workdir, home=home, conf=tmp_path / "missing.json")
    assert_one_error(r, "does not exist")
    r = run_ckms(["-c", str(tmp_path / "other.json"), "server-version"], cwd=workdir, home=home, conf=None)
    assert_one_error(r, "other.json does not exist")


def test_usage_errors_exit_2(ckms: Runner) -> None:
    r = ckms("sym", "keys", "create", "--algorithm", "des")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = ckms("sym", "encrypt", "-k", "k", "does-not-exist.bin")
    assert r.returncode == 2
    r = ckms("sym", "encrypt", "-k", "k", "-a", "zz", "x")
    assert r.returncode == 2


# ---------------------------------------------------------------------------------------- other commands


def test_revoke_sends_reason(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.Revoke] = lambda _item: kmip_reply(Operation.Revoke, UidResponse("uid-9"))
    r = ckms("sym", "keys", "revoke", "-t", "t1", "key compromised")
    assert r.stdout == "Successfully revoked the object.\n\t  Unique identifier: uid-9\n"
    (req,) = _sent(fake, Operation.Revoke, RevokeRequest)
    assert req.unique_identifier == '["t1"]'
    assert req.revocation_reason.revocation_message == "key compromised"


def _get_reply(_item: TTLV) -> Reply:
    block = KeyBlock.raw(KEY, CryptographicAlgorithm.AES, 256, KeyFormatType.TransparentSymmetricKey)
    return kmip_reply(Operation.Get, GetResponse(ObjectType.SymmetricKey, "uid-2", SymmetricKey(block)))


@pytest.mark.parametrize(("fmt", "expected"), [("raw", KEY), ("base64", base64.b64encode(KEY))])
def test_export_raw_and_base64(fake: FakeKms, ckms: Runner, workdir: Path, fmt: str, expected: bytes) -> None:
    fake.handlers[Operation.Get] = _get_reply
    r = ckms("sym", "keys", "export", "-k", "uid-2", "-f", fmt, "key.out")
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'The key uid-2 of type SymmetricKey was exported to "key.out"\n\t  Unique identifier: uid-2\n'
    assert (workdir / "key.out").read_bytes() == expected


def test_export_json_ttlv_then_import_it(fake: FakeKms, ckms: Runner, workdir: Path) -> None:
    fake.handlers[Operation.Get] = _get_reply
    fake.handlers[Operation.Import] = lambda _item: kmip_reply(Operation.Import, ImportResponse("uid-3"))
    assert ckms("sym", "keys", "export", "-t", "x", "key.json").returncode == 0
    exported = json.loads((workdir / "key.json").read_text())
    assert exported["tag"] == "Object"
    r = ckms("sym", "keys", "import", "-t", "imported", "--key-usage", "encrypt", "-r", "key.json", "uid-3")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        'The SymmetricKey in file "key.json" was imported with id: uid-3\n'
        "\t  Unique identifier: uid-3\n\n  Tags:\n    - imported\n"
    )
    (req,) = _sent(fake, Operation.Import, ImportRequest)
    assert req.unique_identifier == "uid-3" and req.replace_existing is True
    assert req.object.key_block.value().material_bytes() == KEY
    assert req.attributes.cryptographic_usage_mask == 0x4
    assert _tag_values(req.attributes) == [["imported"]]


def test_import_raw_aes(fake: FakeKms, ckms: Runner, workdir: Path) -> None:
    fake.handlers[Operation.Import] = lambda _item: kmip_reply(Operation.Import, ImportResponse("uid-4"))
    (workdir / "k.bin").write_bytes(KEY[:16])
    r = ckms("sym", "keys", "import", "-f", "aes", "k.bin")
    assert r.stdout.startswith('The SymmetricKey in file "k.bin" was imported with id: uid-4\n')
    (req,) = _sent(fake, Operation.Import, ImportRequest)
    assert req.attributes.cryptographic_length == 128 and req.unique_identifier == ""


def test_locate(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.Locate] = lambda _item: kmip_reply(Operation.Locate, LocateResponse(2, ["a", "b"]))
    r = ckms("locate", "-t", "t1", "-a", "aes", "-l", "256", "-o", "symmetric-key")
    assert r.stdout == "List of unique identifiers:\na\nb\n"
    (req,) = _sent(fake, Operation.Locate, LocateRequest)
    attrs = schema.decode(Attributes, req.attributes)
    assert attrs.cryptographic_algorithm == CryptographicAlgorithm.AES and attrs.cryptographic_length == 256
    assert attrs.object_type == ObjectType.SymmetricKey
    assert _tag_values(attrs) == [["t1"]]
    fake.handlers[Operation.Locate] = lambda _item: kmip_reply(Operation.Locate, LocateResponse(0, []))
    assert ckms("locate").stdout == "No object found.\n"


def test_attributes_get_renders_json(fake: FakeKms, ckms: Runner) -> None:
    attrs = Attributes(
        cryptographic_algorithm=CryptographicAlgorithm.AES,
        cryptographic_length=256,
        object_type=ObjectType.SymmetricKey,
    )
    item = schema.encode(attrs)
    item.value.append(
        TTLV.struct(
            Tag.Attribute,
            [
                TTLV(Tag.VendorIdentification, ItemType.TextString, "cosmian"),
                TTLV(Tag.AttributeName, ItemType.TextString, "tag"),
                TTLV(Tag.AttributeValue, ItemType.TextString, '["_kk","t1"]'),
            ],
        )
    )
    reply = TTLV.struct(
        PSEUDO_BASE_RESPONSE + Operation.GetAttributes, [TTLV(Tag.UniqueIdentifier, ItemType.TextString, "uid-5"), item]
    )
    fake.handlers[Operation.GetAttributes] = lambda _i: Reply(200, json_codec.dumps(reply).encode())
    r = ckms("attributes", "get", "-i", "uid-5")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["Attributes for uid-5", "\t  Unique identifier: uid-5"]
    shown = json.loads("\n".join(lines[2:]))
    assert shown == {
        "ObjectType": "SymmetricKey",
        "CryptographicAlgorithm": "AES",
        "CryptographicLength": 256,
        "Tag": ["_kk", "t1"],
    }
    r = ckms("attributes", "get", "-t", "t1", "-a", "tag", "-a", "cryptographic-length")
    assert json.loads("\n".join(r.stdout.splitlines()[2:])) == {"Tag": ["_kk", "t1"], "CryptographicLength": 256}


def test_attributes_set_one_call_per_attribute(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.SetAttribute] = lambda _item: kmip_reply(Operation.SetAttribute, UidResponse("uid-6"))
    r = ckms(
        "attributes",
        "set",
        "-t",
        "t1",
        "--activation-date",
        "1700000000000",
        "-u",
        "encrypt",
        "-u",
        "decrypt",
        "-v",
        "acme",
        "-n",
        "color",
        "--attribute-value",
        "00ff",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Attribute set successfully\n")
    sent = [item for path, item, _ in fake.requests if path == "/kmip/2_1"]
    assert len(sent) == 3
    uids = [s.find(Tag.UniqueIdentifier).value for s in sent]
    assert uids == ['["t1"]', "uid-6", "uid-6"]
    news = [s.find(Tag.NewAttribute).children()[0] for s in sent]
    assert (news[0].tag, news[0].value) == (Tag.ActivationDate, 1700000000)
    assert (news[1].tag, news[1].value) == (Tag.CryptographicUsageMask, 0xC)
    assert news[2].find(Tag.AttributeValue).value == b"\x00\xff"
    r = ckms("attributes", "set", "-i", "x")
    assert_one_error(r, "no attribute to set")


def test_attributes_delete(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.DeleteAttribute] = lambda _i: kmip_reply(Operation.DeleteAttribute, UidResponse("u7"))
    r = ckms("attributes", "delete", "-i", "u7", "--attribute", "ActivationDate")
    assert r.stdout.startswith("Attribute deleted successfully\n")
    (_, item, _) = fake.requests[-1]
    ref = item.find(Tag.AttributeReference)
    assert (ref.type, ref.value) == (ItemType.Enumeration, Tag.ActivationDate)
    assert_one_error(ckms("attributes", "delete", "-i", "u7", "--attribute", "NoSuchThing"), "unknown attribute")


def test_exported_key_files_are_private(fake: FakeKms, ckms: Runner, workdir: Path) -> None:
    fake.handlers[Operation.Get] = _get_reply
    (workdir / "key.raw").write_bytes(b"old")
    (workdir / "key.raw").chmod(0o644)
    assert ckms("sym", "keys", "export", "-k", "uid-2", "-f", "raw", "key.raw").returncode == 0
    assert (workdir / "key.raw").stat().st_mode & 0o777 == 0o600
    assert (workdir / "key.raw").read_bytes() == KEY


def test_get_attributes_4x_alias(fake: FakeKms, ckms: Runner) -> None:
    fake.handlers[Operation.GetAttributes] = lambda _i: text_reply(422, "Item not found: zz")
    assert assert_one_error(ckms("get-attributes", "-i", "zz")) == "ERROR: Item not found: zz"
