"""The CLI must stay shippable on its own: it may use the protocol library, never the server side (DESIGN §2)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("kms.server", "kms.core", "kms.store", "kms.crypto")


def test_ckms_never_loads_server_packages() -> None:
    code = (
        "import sys, ckms.cli, ckms.client, ckms.file_crypto, ckms.commands.sym, ckms.commands.attributes, "
        "ckms.commands.locate, ckms.commands.server\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
