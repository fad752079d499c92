"""CPU time of a process tree, read from /proc/<pid>/stat (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _read_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime + stime in clock ticks) of one process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state), so field N of proc(5) is fields[N - 3].
    return int(fields[1]), int(fields[11]) + int(fields[12])


def tree_cpu_seconds(root: int) -> dict[int, float]:
    """User + system CPU seconds used so far by `root` and each of its live descendants, by pid.

    Only live processes count: a worker that exits between two readings takes its CPU time with it (a gunicorn worker
    restart during a run would show as a drop; compare the pids of two readings to see such a change).
    """
    parent_of: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _read_stat(int(entry.name))
        if stat is not None:
            parent_of[int(entry.name)], ticks[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, ppid in parent_of.items():
        children.setdefault(ppid, []).append(pid)
    tree: dict[int, float] = {}
    todo = [root] if root in ticks else []
    while todo:
        pid = todo.pop()
        tree[pid] = ticks[pid] / CLOCK_TICKS
        todo.extend(children.get(pid, ()))
    return dict(sorted(tree.items()))


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idle and I/O wait since boot (first line of /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already counted in user and nice]
    values = [int(v) for v in fields[:8]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS
