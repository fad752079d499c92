"""Fixtures for running `ckms` exactly as a user does: a subprocess with its own HOME and configuration file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


Runner = Callable[..., Result]


def run_ckms(
    args: list[str],
    *,
    cwd: Path,
    home: Path,
    conf: Path | None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    full_env = {k: v for k, v in os.environ.items() if k not in ("KMS_CLI_CONF", "KMS_CLI_FORMAT")}
    full_env["HOME"] = str(home)
    if conf is not None:
        full_env["KMS_CLI_CONF"] = str(conf)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "ckms", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_conf(path: Path, url: str, **extra: object) -> Path:
    path.write_text(json.dumps({"kms_server_url": url, **extra}))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    w = tmp_path / "work"
    w.mkdir()
    return w


@pytest.fixture
def ckms_at(workdir: Path, home: Path, tmp_path: Path) -> Callable[[str], Runner]:
    """`ckms_at(url)` -> a runner whose configuration file points at `url`."""

    def factory(url: str) -> Runner:
        conf = write_conf(tmp_path / "kms.json", url)

        def run(*args: str, env: dict[str, str] | None = None) -> Result:
            return run_ckms(list(args), cwd=workdir, home=home, conf=conf, env=env)

        return run

    return factory


def assert_one_error(result: Result, contains: str | None = None) -> str:
    """Exit code 1, exactly one `ERROR: ` line on stderr and no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.error_lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: "), lines
    if contains is not None:
        assert contains in lines[0], lines[0]
    return lines[0]
