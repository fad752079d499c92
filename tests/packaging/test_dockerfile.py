"""The Dockerfile only copies what exists, runs unprivileged and starts a console script of this project."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    out = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_every_copied_path_exists() -> None:
    copies = [rest for op, rest in _instructions() if op == "COPY"]
    assert copies
    for rest in copies:
        parts = rest.split()
        assert not any(p.startswith("--from") for p in parts)
        for src in parts[:-1]:
            assert (REPO / src).exists(), f"Dockerfile copies {src}, which does not exist"


def test_entrypoint_is_a_console_script_and_user_is_not_root() -> None:
    instructions = _instructions()
    entry = [json.loads(rest) for op, rest in instructions if op == "ENTRYPOINT"]
    assert len(entry) == 1 and isinstance(entry[0], list)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry[0][0] in scripts, f"{entry[0][0]} is not a console script of this project"
    users = [rest for op, rest in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("EXPOSE", "9998") in instructions
    base = next(rest for op, rest in instructions if op == "FROM")
    assert re.match(r"python:3\.1[1-9]-slim", base)
    assert any(op == "RUN" and "pip install ." in rest for op, rest in instructions)


def test_readme_commands_match_the_scripts() -> None:
    readme = (REPO / "README.md").read_text()
    assert "./run-kms.sh" in readme and "./run-tests.sh" in readme
    assert (REPO / ".ci" / "run").read_text().count("./run-tests.sh") == 1
