"""What the commands print, byte for byte as Cosmian's `ckms` prints it, so scripts that parse it keep working.

Text mode: a message line, then "\\t  Unique identifier: <id>", then a tags block. JSON mode (env
`KMS_CLI_FORMAT=json`) prints one JSON object per command instead, for scripts that would rather not parse text.
Only results go to stdout; progress bars, the `--json` protocol dump and errors go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import click

FORMAT_ENV = "KMS_CLI_FORMAT"


def json_mode() -> bool:
    return os.environ.get(FORMAT_ENV, "").strip().lower() == "json"


def id_line(unique_identifier: str) -> str:
    return f"\t  Unique identifier: {unique_identifier}"


def tags_block(tags: Iterable[str] | None) -> list[str]:
    tags = list(tags or ())
    if not tags:
        return []
    return ["", "  Tags:", *(f"    - {t}" for t in tags)]


def quoted(path: str | os.PathLike[str]) -> str:
    """A path the way Rust's `{:?}` shows it (Cosmian's output): double-quoted, quotes and backslashes escaped."""
    text = os.fspath(path)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(
    message: str | None,
    *,
    unique_identifier: str | None = None,
    tags: Sequence[str] | None = None,
    lines: Sequence[str] = (),
) -> str:
    out: list[str] = []
    if message is not None:
        out.append(message)
    if unique_identifier is not None:
        out.append(id_line(unique_identifier))
    out.extend(lines)
    out.extend(tags_block(tags))
    return "\n".join(out)


def emit(
    message: str | None,
    *,
    unique_identifier: str | None = None,
    tags: Sequence[str] | None = None,
    lines: Sequence[str] = (),
    data: dict[str, Any] | None = None,
) -> None:
    """Print a command's result; `data` adds fields to the JSON form (e.g. file paths, identifier lists)."""
    if json_mode():
        obj: dict[str, Any] = {}
        if message is not None:
            obj["message"] = message
        if unique_identifier is not None:
            obj["unique_identifier"] = unique_identifier
        if tags:
            obj["tags"] = list(tags)
        obj.update(data or {})
        click.echo(json.dumps(obj, indent=2))
        return
    click.echo(render(message, unique_identifier=unique_identifier, tags=tags, lines=lines))


@contextlib.contextmanager
def progress_bar(length: int, label: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A byte-count progress bar on stderr, shown only to a person (stderr is a terminal) and when asked.

    Scripts capturing stderr must get clean error lines, not bar redraws, hence the terminal check.
    """
    if not enabled or not sys.stderr.isatty():
        yield lambda _n: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update
