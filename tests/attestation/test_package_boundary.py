"""attestation/ is a standalone library: it imports nothing else of this project (DESIGN.md, who may import whom)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "attestation"
OURS = ("kms", "ckms", "bootstrap")


def test_no_module_imports_the_rest_of_the_project() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in OURS]
    assert not offenders


def test_importing_everything_loads_no_project_module() -> None:
    code = (
        "import sys, pkgutil, importlib, attestation\n"
        "for m in pkgutil.walk_packages(attestation.__path__, 'attestation.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('kms', 'ckms', 'bootstrap')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
