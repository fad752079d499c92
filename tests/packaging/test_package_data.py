"""An installed server reads its Alembic migrations from its own package (kms/store/migrations): every file there
must be part of the distribution, either as a module of a package setuptools finds or as declared package data.

Checked against pyproject.toml's rules rather than by building a wheel: a build needs a recent setuptools
(PEP 639 license field), which an offline test run cannot fetch.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from kms.store import schema

REPO = Path(__file__).resolve().parents[2]


def _shipped(path: Path, setuptools: dict) -> bool:
    rel = path.relative_to(REPO)
    package_dir = rel.parent
    if path.suffix == ".py":
        if not (REPO / package_dir / "__init__.py").exists():
            return False  # not a package: packages.find would skip the directory
        dotted = ".".join(package_dir.parts)
        return any(fnmatch.fnmatch(dotted, pattern) for pattern in setuptools["packages"]["find"]["include"])
    for package, patterns in setuptools.get("package-data", {}).items():
        root = Path(*package.split("."))
        if rel.is_relative_to(root):
            inner = rel.relative_to(root).as_posix()
            if any(fnmatch.fnmatch(inner, p) for p in patterns):
                return True
    return False


def test_every_migration_file_is_shipped() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    files = [p for p in schema.MIGRATIONS_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    names = {p.relative_to(schema.MIGRATIONS_DIR).as_posix() for p in files}
    assert {"env.py", "script.py.mako", "__init__.py", "versions/__init__.py"} <= names
    assert {f"versions/{r}.py" for r in schema.REVISIONS} <= names
    missing = [p.relative_to(REPO).as_posix() for p in files if not _shipped(p, setuptools)]
    assert not missing, f"not in the distribution: {missing}"
