"""End-to-end: `ckms` as a subprocess against a real `kms-server`, exactly as a user runs it.

Covers the Cosmian quick start verbatim (small file: one call; 3 MiB file: KMIP streaming), key lifecycle,
locate, attributes, and the failures a user meets. Each test uses its own tags, so they can share one server.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ckms.file_crypto import CHUNK_SIZE
from tests.cli.conftest import Result, Runner, assert_one_error
from tests.support.server import ServerProcess, free_port

ID_LINE = "\t  Unique identifier: "


@pytest.fixture
def ckms(kms_server: ServerProcess, ckms_at: Callable[[str], Runner]) -> Runner:
    return ckms_at(kms_server.url)


def _tag() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def _ok(r: Result) -> Result:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


def _uid(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith(ID_LINE)]
    assert len(lines) == 1, stdout
    return lines[0][len(ID_LINE) :]


def _no_partial_files(directory: Path) -> None:
    assert [p.name for p in directory.iterdir() if p.name.endswith(".part")] == []


def _export_raw(ckms: Runner, workdir: Path, selector: list[str]) -> bytes:
    name = f"key-{uuid.uuid4().hex[:6]}.raw"
    _ok(ckms("sym", "keys", "export", *selector, "-f", "raw", name))
    return (workdir / name).read_bytes()


# ------------------------------------------------------------------------------------------- quick start


@pytest.mark.parametrize("size", [50_000, 3 * CHUNK_SIZE + 777], ids=["single-call", "streamed"])
def test_quick_start_verbatim(ckms: Runner, workdir: Path, size: int) -> None:
    tag = _tag()
    r = _ok(ckms("sym", "keys", "create", "--number-of-bits", "256", "--algorithm", "aes", "--tag", tag))
    lines = r.stdout.splitlines()
    assert lines[0] == "The symmetric key was successfully generated."
    assert lines[1].startswith(ID_LINE) and len(_uid(r.stdout)) >= 8
    assert lines[2:] == ["", "  Tags:", f"    - {tag}"]

    plain = os.urandom(size)
    (workdir / "image.png").write_bytes(plain)
    r = _ok(ckms("sym", "encrypt", "--tag", tag, "--output-file", "image.enc", "image.png"))
    assert r.stdout == 'The encrypted file is available at "image.enc"\n'
    blob = (workdir / "image.enc").read_bytes()
    assert len(blob) == 12 + size + 16

    r = _ok(ckms("sym", "decrypt", "--tag", tag, "--output-file", "image2.png", "image.enc"))
    assert r.stdout == f'The decrypted file is available at "image2.png"\n\n  Tags:\n    - {tag}\n'
    assert (workdir / "image2.png").read_bytes() == plain

    # The layout is nonce || ciphertext || tag with no header: the exported key alone decrypts it.
    key = _export_raw(ckms, workdir, ["--tag", tag])
    assert AESGCM(key).decrypt(blob[:12], blob[12:], None) == plain
    _no_partial_files(workdir)


def test_default_output_names_and_aad(ckms: Runner, workdir: Path) -> None:
    tag = _tag()
    _ok(ckms("sym", "keys", "create", "-t", tag))
    (workdir / "photo.jpg").write_bytes(b"hello world")
    _ok(ckms("sym", "encrypt", "-t", tag, "-a", "0a0b0c", "photo.jpg"))
    assert (workdir / "photo.enc").is_file()
    r = _ok(ckms("sym", "decrypt", "-t", tag, "-a", "0a0b0c", "photo.enc"))
    assert r.stdout.startswith('The decrypted file is available at "photo.plain"\n')
    assert (workdir / "photo.plain").read_bytes() == b"hello world"
    # Wrong additional data: authentication fails, nothing written.
    (workdir / "photo.plain").unlink()
    assert_one_error(ckms("sym", "decrypt", "-t", tag, "-a", "ff", "photo.enc"))
    assert not (workdir / "photo.plain").exists()


@pytest.mark.parametrize("size", [1000, 2 * CHUNK_SIZE + 5], ids=["single-call", "streamed"])
def test_chacha20_poly1305(ckms: Runner, workdir: Path, size: int) -> None:
    tag = _tag()
    _ok(ckms("sym", "keys", "create", "-a", "chacha20", "-t", tag))
    plain = os.urandom(size)
    (workdir / "c.bin").write_bytes(plain)
    _ok(ckms("sym", "encrypt", "-t", tag, "-d", "chacha20-poly1305", "c.bin"))
    blob = (workdir / "c.enc").read_bytes()
    key = _export_raw(ckms, workdir, ["-t", tag])
    assert ChaCha20Poly1305(key).decrypt(blob[:12], blob[12:], None) == plain
    _ok(ckms("sym", "decrypt", "-t", tag, "-d", "chacha20-poly1305", "-o", "c.out", "c.enc"))
    assert (workdir / "c.out").read_bytes() == plain


@pytest.mark.parametrize(("alg", "overhead"), [("aes-gcm-siv", 28), ("aes-xts", 16)])
def test_single_call_modes(ckms: Runner, workdir: Path, alg: str, overhead: int) -> None:
    tag = _tag()
    # XTS needs a double-length key (two AES-256 keys).
    _ok(ckms("sym", "keys", "create", "-l", "512" if alg == "aes-xts" else "256", "-t", tag))
    plain = os.urandom(4096)
    (workdir / "m.bin").write_bytes(plain)
    _ok(ckms("sym", "encrypt", "-t", tag, "-d", alg, "m.bin"))
    assert len((workdir / "m.enc").read_bytes()) == len(plain) + overhead
    _ok(ckms("sym", "decrypt", "-t", tag, "-d", alg, "-o", "m.out", "m.enc"))
    assert (workdir / "m.out").read_bytes() == plain


@pytest.mark.parametrize("size", [5000, 3 * CHUNK_SIZE], ids=["single-call", "streamed"])
def test_tampered_ciphertext_leaves_no_output(ckms: Runner, workdir: Path, size: int) -> None:
    tag = _tag()
    _ok(ckms("sym", "keys", "create", "-t", tag))
    (workdir / "f.bin").write_bytes(os.urandom(size))
    _ok(ckms("sym", "encrypt", "-t", tag, "f.bin"))
    blob = bytearray((workdir / "f.enc").read_bytes())
    blob[12 + size - 3] ^= 0x01  # in the last chunk: the server has already returned earlier plaintext
    (workdir / "f.enc").write_bytes(bytes(blob))
    assert_one_error(ckms("sym", "decrypt", "-t", tag, "-o", "f.out", "f.enc"))
    assert not (workdir / "f.out").exists()
    _no_partial_files(workdir)


# ------------------------------------------------------------------------------------------ key lifecycle


def test_key_lifecycle(ckms: Runner, workdir: Path) -> None:
    tag = _tag()
    key_id = f"key-{uuid.uuid4().hex[:8]}"
    r = _ok(ckms("sym", "keys", "create", "-t", tag, key_id))
    assert _uid(r.stdout) == key_id

    r = _ok(ckms("sym", "keys", "export", "-k", key_id, "k.json"))
    assert r.stdout == f'The key {key_id} of type SymmetricKey was exported to "k.json"\n{ID_LINE}{key_id}\n'
    assert json.loads((workdir / "k.json").read_text())["tag"] == "Object"
    raw = _export_raw(ckms, workdir, ["-t", tag])
    assert len(raw) == 32
    _ok(ckms("sym", "keys", "export", "-t", tag, "-f", "base64", "k.b64"))
    assert base64.b64decode((workdir / "k.b64").read_text()) == raw

    # Import the JSON TTLV export under a new id, with a tag: same key bytes.
    copy_tag = _tag()
    r = _ok(ckms("sym", "keys", "import", "-t", copy_tag, "k.json", f"{key_id}-copy"))
    assert r.stdout == (
        f'The SymmetricKey in file "k.json" was imported with id: {key_id}-copy\n'
        f"{ID_LINE}{key_id}-copy\n\n  Tags:\n    - {copy_tag}\n"
    )
    assert _export_raw(ckms, workdir, ["-k", f"{key_id}-copy"]) == raw

    # Raw import; a second import under the same id needs --replace.
    (workdir / "k.raw").write_bytes(raw)
    _ok(ckms("sym", "keys", "import", "-f", "aes", "k.raw", f"{key_id}-raw"))
    assert_one_error(ckms("sym", "keys", "import", "-f", "aes", "k.raw", f"{key_id}-raw"))
    _ok(ckms("sym", "keys", "import", "-f", "aes", "-r", "k.raw", f"{key_id}-raw"))

    # Re-key: a new id, a new key.
    r = _ok(ckms("sym", "keys", "re-key", "-k", f"{key_id}-raw"))
    assert r.stdout.startswith("The symmetric key was successfully refreshed.\n")
    new_id = _uid(r.stdout)
    assert new_id != f"{key_id}-raw"
    assert _export_raw(ckms, workdir, ["-k", new_id]) != raw

    r = _ok(ckms("sym", "keys", "revoke", "-k", key_id, "no longer needed"))
    assert r.stdout == f"Successfully revoked the object.\n{ID_LINE}{key_id}\n"
    assert_one_error(ckms("sym", "encrypt", "-k", key_id, "k.raw"))  # a revoked key cannot protect
    _ok(ckms("sym", "keys", "export", "-i", "-k", key_id, "revoked.json"))

    r = _ok(ckms("sym", "keys", "destroy", "-k", key_id))
    assert r.stdout == f"Successfully destroyed the key.\n{ID_LINE}{key_id}\n"
    assert_one_error(ckms("sym", "keys", "export", "-k", key_id, "gone.json"))
    assert not (workdir / "gone.json").exists()


def test_locate_by_tag(ckms: Runner) -> None:
    tag, other = _tag(), _tag()
    ids = {_uid(_ok(ckms("sym", "keys", "create", "-t", tag)).stdout) for _ in range(2)}
    both = _uid(_ok(ckms("sym", "keys", "create", "-t", tag, "-t", other)).stdout)
    r = _ok(ckms("locate", "--tag", tag))
    lines = r.stdout.splitlines()
    assert lines[0] == "List of unique identifiers:"
    assert set(lines[1:]) == ids | {both}
    r = _ok(ckms("locate", "-t", tag, "-t", other, "-a", "aes", "-l", "256", "-o", "symmetric-key"))
    assert r.stdout.splitlines()[1:] == [both]
    assert _ok(ckms("locate", "-t", _tag())).stdout == "No object found.\n"


def test_attributes_get_set_delete(ckms: Runner) -> None:
    tag = _tag()
    uid = _uid(_ok(ckms("sym", "keys", "create", "-t", tag)).stdout)

    r = _ok(ckms("attributes", "get", "-t", tag))
    lines = r.stdout.splitlines()
    assert lines[:2] == [f"Attributes for {uid}", f"{ID_LINE}{uid}"]
    attrs = json.loads("\n".join(lines[2:]))
    assert attrs["CryptographicAlgorithm"] == "AES" and attrs["CryptographicLength"] == 256
    assert attrs["ObjectType"] == "SymmetricKey"
    assert set(attrs["Tag"]) == {"_kk", tag}

    r = _ok(
        ckms(
            "attributes",
            "set",
            "-i",
            uid,
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
    )
    assert r.stdout.splitlines()[0] == "Attribute set successfully"
    r = _ok(ckms("attributes", "get", "-i", uid, "-a", "CryptographicUsageMask", "-a", "acme:color"))
    assert json.loads("\n".join(r.stdout.splitlines()[2:])) == {"CryptographicUsageMask": 12, "acme:color": "00FF"}

    r = _ok(ckms("attributes", "delete", "-t", tag, "--attribute", "acme:color"))
    assert r.stdout.splitlines()[0] == "Attribute deleted successfully"
    r = _ok(ckms("attributes", "get", "-i", uid, "-a", "acme:color"))
    assert json.loads("\n".join(r.stdout.splitlines()[2:])) == {}


def test_server_version(ckms: Runner) -> None:
    r = _ok(ckms("server-version"))
    assert r.stdout.strip() and "\n" not in r.stdout.strip() and not r.stdout.startswith('"')


# ------------------------------------------------------------------------------------------------ errors


def test_unknown_id(ckms: Runner, workdir: Path) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    assert_one_error(ckms("sym", "keys", "destroy", "-k", missing), "Item not found")
    assert_one_error(ckms("sym", "keys", "export", "-k", missing, "x.json"), "Item not found")
    assert not (workdir / "x.json").exists()
    (workdir / "a.txt").write_text("x")
    assert_one_error(ckms("sym", "encrypt", "-k", missing, "a.txt"))
    assert not (workdir / "a.enc").exists()


def test_no_id_nor_tag(ckms: Runner) -> None:
    r = ckms("sym", "keys", "destroy")
    assert assert_one_error(r) == "ERROR: Either --key-id or one or more --tag must be specified"


def test_server_down(ckms_at: Callable[[str], Runner]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = assert_one_error(ckms_at(url)("sym", "keys", "create", "-t", "x"))
    assert url in line


def test_progress_bar_only_on_a_terminal(
    ckms: Runner, kms_server: ServerProcess, workdir: Path, home: Path, tmp_path: Path
) -> None:
    tag = _tag()
    _ok(ckms("sym", "keys", "create", "-t", tag))
    (workdir / "big.bin").write_bytes(os.urandom(2 * CHUNK_SIZE + 1))
    r = _ok(ckms("sym", "encrypt", "-t", tag, "big.bin"))
    assert r.stderr == ""  # captured stderr (not a terminal): no bar

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("KMS_CLI_FORMAT",)}
    env.update(HOME=str(home), KMS_CLI_CONF=str(tmp_path / "kms.json"))
    proc = subprocess.run(
        [sys.executable, "-m", "ckms", "sym", "decrypt", "-t", tag, "big.enc"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
        timeout=120,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.returncode == 0
    assert b"Decrypting" in b"".join(chunks)
    assert proc.stdout.decode().startswith('The decrypted file is available at "big.plain"')
