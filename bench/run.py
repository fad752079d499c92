"""KMIP throughput benchmark against a real `kms-server` (a plain script, not a test).

Starts the server (gunicorn gthread workers, SQLite store in a fresh directory), then measures, at 1 and 16 concurrent
keep-alive clients, the rate of Create (AES-256), Get and Encrypt (64 bytes) on POST /kmip/2_1, next to the rate of
GET /version, an endpoint answering a precomputed string on the same server stack: the framework's ceiling. For each
run it also reads the server's CPU time (master and workers, /proc/<pid>/stat) and divides it by the request count.

Usage: .venv/bin/python bench/run.py [--duration 10] [--workers 1,2] [--clients 1,16] ...  (see --help, bench/README.md)
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.loadgen import LoadResult, Target, find_wrk, run_python, run_wrk, wrk_version  # noqa: E402 (after the sys.path set-up)
from bench.procstat import machine_busy_seconds, tree_cpu_seconds  # noqa: E402 (after the sys.path set-up)
from tests.support.server import ServerProcess  # noqa: E402 (after the sys.path set-up)

KMIP_PATH = "/kmip/2_1"
CEILING = "version"
OPERATIONS = ("version", "create", "get", "encrypt")
PLAINTEXT_BYTES = 64
OTHER_CPU_WARNING = 15.0  # percent of one core used by other processes during a run

WRK_HELP = """\
Load generator: wrk (C, keep-alive), from the Debian/Ubuntu package `wrk` (`apt-get install -y wrk`; macOS: `brew
install wrk`), found on PATH. Without it the benchmark falls back to a Python load generator (one process per
connection): it needs several times more CPU per request than wrk and takes it from the server on a small machine, so
its rates are bounded by the client as much as by the server, and it says so.
"""


def _create_body() -> dict[str, Any]:
    attributes = [
        {"tag": "CryptographicAlgorithm", "type": "Enumeration", "value": "AES"},
        {"tag": "CryptographicLength", "type": "Integer", "value": 256},
        {"tag": "CryptographicUsageMask", "type": "Integer", "value": 12},  # Encrypt | Decrypt
    ]
    return {
        "tag": "Create",
        "type": "Structure",
        "value": [
            {"tag": "ObjectType", "type": "Enumeration", "value": "SymmetricKey"},
            {"tag": "Attributes", "type": "Structure", "value": attributes},
        ],
    }


def _get_body(uid: str) -> dict[str, Any]:
    return {
        "tag": "Get",
        "type": "Structure",
        "value": [{"tag": "UniqueIdentifier", "type": "TextString", "value": uid}],
    }


def _encrypt_body(uid: str) -> dict[str, Any]:
    data = os.urandom(PLAINTEXT_BYTES).hex().upper()
    return {
        "tag": "Encrypt",
        "type": "Structure",
        "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": uid},
            {"tag": "Data", "type": "ByteString", "value": data},
        ],
    }


def _compact(item: dict[str, Any]) -> str:
    return json.dumps(item, separators=(",", ":"))


def build_targets(uids: Sequence[str]) -> dict[str, Target]:
    return {
        "version": Target("GET", "/version"),
        "create": Target("POST", KMIP_PATH, (_compact(_create_body()),)),
        "get": Target("POST", KMIP_PATH, tuple(_compact(_get_body(u)) for u in uids)),
        "encrypt": Target("POST", KMIP_PATH, tuple(_compact(_encrypt_body(u)) for u in uids)),
    }


# ------------------------------------------------------------------------------------------------- set-up and checks


class BenchError(RuntimeError):
    pass


def _request(conn: http.client.HTTPConnection, target: Target, body: str | None) -> tuple[int, bytes]:
    headers = {"Content-Type": target.content_type} if body is not None else {}
    conn.request(target.method, target.path, body=body.encode() if body is not None else None, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def create_keys(conn: http.client.HTTPConnection, count: int) -> list[str]:
    target = Target("POST", KMIP_PATH, (_compact(_create_body()),))
    uids = []
    for _ in range(count):
        status, data = _request(conn, target, target.bodies[0])
        if status != 200:
            raise BenchError(f"Create of a benchmark key failed: HTTP {status}: {data[:300]!r}")
        answer = json.loads(data)
        uid = next((f["value"] for f in answer["value"] if f["tag"] == "UniqueIdentifier"), None)
        if not uid:
            raise BenchError(f"CreateResponse without a UniqueIdentifier: {data[:300]!r}")
        uids.append(uid)
    return uids


def check_target(conn: http.client.HTTPConnection, op: str, target: Target) -> None:
    """One request of each kind before the load: HTTP 200 and the expected response, or stop with the reason."""
    for body in target.bodies or (None,):
        status, data = _request(conn, target, body)
        if status != 200:
            raise BenchError(f"{op}: HTTP {status}: {data[:300]!r}")
        if op != CEILING:
            tag = json.loads(data).get("tag")
            if tag != f"{op.capitalize()}Response":
                raise BenchError(f"{op}: unexpected answer {data[:300]!r}")


# ------------------------------------------------------------------------------------------------------ measuring


@dataclasses.dataclass
class Row:
    workers: int
    op: str
    clients: int
    load: LoadResult
    server_cpu_seconds: float
    worker_cpu_seconds: list[float]  # each worker's share of server_cpu_seconds (the master's is the rest)
    machine_busy_seconds: float  # CPU time of the whole machine during the run (all processes, all cores)
    warmup_errors: int
    warmup_first_error: str
    server_pids_changed: bool

    @property
    def server_cpu_ms_per_request(self) -> float:
        return self.server_cpu_seconds * 1e3 / self.load.requests if self.load.requests else float("nan")

    @property
    def server_cpu_percent(self) -> float:
        return 100 * self.server_cpu_seconds / self.load.seconds if self.load.seconds else float("nan")

    @property
    def worker_cpu_percents(self) -> str:
        """Each worker's CPU in percent of one core, e.g. "97/12": shows connections piling up on one worker."""
        if not self.load.seconds:
            return "-"
        return "/".join(f"{100 * s / self.load.seconds:.0f}" for s in self.worker_cpu_seconds)

    @property
    def other_cpu_percent(self) -> float:
        """CPU used during the run by neither the server nor the load generator, in percent of one core."""
        if not self.load.seconds:
            return float("nan")
        other = self.machine_busy_seconds - self.server_cpu_seconds - self.load.client_cpu_seconds
        return max(0.0, 100 * other / self.load.seconds)

    @property
    def client_cpu_percent(self) -> float:
        return 100 * self.load.client_cpu_seconds / self.load.seconds if self.load.seconds else float("nan")


LoadFn = Callable[[str, Target, int, float], LoadResult]


def measure(
    server: ServerProcess,
    load: LoadFn,
    workers: int,
    op: str,
    target: Target,
    clients: int,
    duration: float,
    warmup: float,
) -> Row:
    assert server.proc is not None
    warm_errors, warm_first = 0, ""
    if warmup > 0:
        warm = load(server.url, target, clients, warmup)
        warm_errors, warm_first = warm.errors, warm.first_error
    master = server.proc.pid
    busy0, cpu0 = machine_busy_seconds(), tree_cpu_seconds(master)
    result = load(server.url, target, clients, duration)
    cpu1, busy1 = tree_cpu_seconds(master), machine_busy_seconds()
    if server.proc.poll() is not None:
        raise BenchError(f"the server exited during the {op} run:\n" + "\n".join(server.log[-40:]))
    total = sum(cpu1.values()) - sum(cpu0.values())
    per_worker = [cpu1[pid] - cpu0.get(pid, 0.0) for pid in cpu1 if pid != master]
    changed = cpu0.keys() != cpu1.keys()
    return Row(workers, op, clients, result, total, per_worker, busy1 - busy0, warm_errors, warm_first, changed)


def run_server_config(args: argparse.Namespace, workers: int, load: LoadFn, log: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    base = Path(args.data_dir) if args.data_dir else None
    with tempfile.TemporaryDirectory(prefix="kms-bench-db-", dir=base) as data_dir:
        server = ServerProcess(
            Path(data_dir), "--threads", str(args.threads), *args.server_arg, workers=workers
        ).start()
        try:
            assert server.proc is not None
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            uids = create_keys(conn, args.keys)
            targets = build_targets(uids)
            for op in args.ops:
                check_target(conn, op, targets[op])
            conn.close()
            pids = list(tree_cpu_seconds(server.proc.pid))
            log(
                f"server: {server.url}, workers={workers}, threads={args.threads}, pids {pids}, "
                f"database {data_dir} ({filesystem_of(Path(data_dir))}), {len(uids)} keys for get/encrypt"
            )
            for clients in args.clients:
                for op in args.ops:
                    row = measure(server, load, workers, op, targets[op], clients, args.duration, args.warmup)
                    rows.append(row)
                    log(
                        f"  {op:8} clients={clients:<3} {row.load.rate:9.0f} req/s  mean {row.load.mean_ms:7.2f} ms  "
                        f"server CPU {row.server_cpu_ms_per_request:6.3f} ms/req ({row.worker_cpu_percents} %)  "
                        f"errors {row.load.errors}"
                    )
        finally:
            lines_before_stop = len(server.log)  # what the server logs while stopping is normal
            server.stop()
        anomalies = [
            line
            for line in server.log[:lines_before_stop]
            if any(word in line for word in ("ERROR", "CRITICAL", "Traceback", "WORKER TIMEOUT", "Worker exiting"))
        ]
        if anomalies:
            log(f"  server log: {len(anomalies)} error line(s), first ones:")
            for line in anomalies[:10]:
                log("    " + line)
    return rows


def filesystem_of(path: Path) -> str:
    """The file system type holding `path` (tmpfs and disk give very different Create rates)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3 or len(parts[1]) < len(best):
            continue
        if resolved == parts[1] or resolved.startswith(parts[1].rstrip("/") + "/"):
            best, kind = parts[1], parts[2]
    return kind


# ------------------------------------------------------------------------------------------------------- reporting


def _fmt(value: float, spec: str) -> str:
    return "-" if value != value else format(value, spec)  # NaN -> "-"


def table(rows: Sequence[Row], client_capacity_percent: float) -> str:
    header = (
        "operation",
        "clients",
        "req/s",
        "mean ms",
        "p99 ms",
        "srv CPU ms/req",
        "srv CPU %",
        "per worker %",
        "client CPU %",
        "other CPU %",
        "rate ratio",
        "CPU ratio",
        "+CPU ms/req",
        "errors",
    )
    lines = [header]
    ceiling = {(r.workers, r.clients): r for r in rows if r.op == CEILING}
    for r in rows:
        ref = ceiling.get((r.workers, r.clients))
        rate_ratio = r.load.rate / ref.load.rate if ref and ref.load.rate else float("nan")
        cpu_ratio = (
            r.server_cpu_ms_per_request / ref.server_cpu_ms_per_request
            if ref and ref.server_cpu_ms_per_request
            else float("nan")
        )
        extra = r.server_cpu_ms_per_request - ref.server_cpu_ms_per_request if ref else float("nan")
        flags = ""
        if r.client_cpu_percent > 0.9 * client_capacity_percent:
            flags += " (client-bound?)"
        if r.server_pids_changed:
            flags += " (server pids changed)"
        lines.append(
            (
                ("/version" if r.op == CEILING else r.op) + flags,
                str(r.clients),
                _fmt(r.load.rate, ",.0f"),
                _fmt(r.load.mean_ms, ".2f"),
                _fmt(r.load.p99_ms, ".2f"),
                _fmt(r.server_cpu_ms_per_request, ".3f"),
                _fmt(r.server_cpu_percent, ".0f"),
                r.worker_cpu_percents,
                _fmt(r.client_cpu_percent, ".0f"),
                _fmt(r.other_cpu_percent, ".0f"),
                _fmt(rate_ratio, ".2f"),
                _fmt(cpu_ratio, ".2f"),
                _fmt(extra, "+.3f"),
                str(r.load.errors) + (f" (+{r.warmup_errors} warm-up)" if r.warmup_errors else ""),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        out.append("  ".join(cells))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _row_json(r: Row) -> dict[str, Any]:
    return {
        "workers": r.workers,
        "operation": r.op,
        "clients": r.clients,
        "requests": r.load.requests,
        "seconds": r.load.seconds,
        "rate": r.load.rate,
        "mean_ms": r.load.mean_ms,
        "p50_ms": r.load.p50_ms,
        "p99_ms": r.load.p99_ms,
        "max_ms": r.load.max_ms,
        "server_cpu_seconds": r.server_cpu_seconds,
        "server_cpu_ms_per_request": r.server_cpu_ms_per_request,
        "worker_cpu_seconds": r.worker_cpu_seconds,
        "client_cpu_seconds": r.load.client_cpu_seconds,
        "machine_busy_seconds": r.machine_busy_seconds,
        "non_200": r.load.non_200,
        "socket_errors": r.load.socket_errors,
        "first_error": r.load.first_error,
        "warmup_errors": r.warmup_errors,
        "warmup_first_error": r.warmup_first_error,
    }


# ------------------------------------------------------------------------------------------------------------- main


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _op_list(text: str) -> list[str]:
    ops = [x.strip().lower() for x in text.split(",") if x.strip()]
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown operation(s) {unknown}; choose among {', '.join(OPERATIONS)}")
    if CEILING not in ops:  # the reference of every ratio
        ops.insert(0, CEILING)
    return ops


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Rates of KMIP Create, Get and Encrypt (64 B) on a real kms-server at 1 and 16 keep-alive "
        "clients, next to GET /version (the web framework's ceiling on the same stack), with the server's CPU time "
        "per request. Run it with the project's venv: .venv/bin/python bench/run.py",
        epilog=WRK_HELP + "\nSee bench/README.md for how to read the figures.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each measured run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each run (default 2)")
    parser.add_argument("--clients", type=_int_list, default=[1, 16], help="concurrent connections (default 1,16)")
    parser.add_argument(
        "--workers", type=_int_list, default=[1, 2], help="server worker processes, one server per value (default 1,2)"
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per server worker (default 4, as the server)")
    parser.add_argument(
        "--ops",
        type=_op_list,
        default=list(OPERATIONS),
        help=f"operations to run (default {','.join(OPERATIONS)}; version is always run)",
    )
    parser.add_argument("--keys", type=int, default=16, help="keys created first; Get and Encrypt rotate over them")
    parser.add_argument(
        "--load",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if found (auto), wrk, or the Python fallback",
    )
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk threads (at most one per connection; default 1: on 2 cores every client thread "
        "takes CPU from the server)",
    )
    parser.add_argument("--data-dir", help="parent directory of the server's SQLite database (default: system temp)")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra kms-server argument, repeatable (e.g. --server-arg=--cache-capacity=100)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args(argv)
    if args.duration < 1:
        parser.error("--duration must be at least 1 second")
    if args.keys < 1:
        parser.error("--keys must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def log(line: str) -> None:
        print(line, flush=True)

    wrk = find_wrk()
    if args.load == "wrk" and wrk is None:
        print("bench: wrk not found on PATH.\n" + WRK_HELP, file=sys.stderr)
        return 2
    use_wrk = wrk is not None and args.load != "python"
    if use_wrk:
        assert wrk is not None
        wrk_path = wrk

        def load(url: str, target: Target, clients: int, duration: float) -> LoadResult:
            return run_wrk(wrk_path, url, target, clients, duration, args.wrk_threads)

        loader = f"{wrk_version(wrk)} with {args.wrk_threads} thread(s)"
        client_capacity = 100.0 * args.wrk_threads
    else:

        def load(url: str, target: Target, clients: int, duration: float) -> LoadResult:
            return run_python(url, target, clients, duration)

        loader = "Python fallback (http.client, one process per connection)"
        client_capacity = 100.0 * (os.cpu_count() or 1)

    log(
        f"KMS benchmark: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s), "
        f"load generator: {loader}"
    )
    log(
        f"runs of {args.duration:g} s after {args.warmup:g} s of warm-up; clients {args.clients}; "
        f"server workers {args.workers}, {args.threads} threads each"
    )
    load1, load5, _ = os.getloadavg()
    log(f"load average before the runs: {load1:.2f} (1 min), {load5:.2f} (5 min)")
    if not use_wrk:
        log(
            "WARNING: the Python load generator is used (no wrk, or --load python): it needs several times more CPU "
            "per request than wrk,\ntaken from the server on a small machine: the rates below are bounded by "
            "the CLIENT as much as by the server."
        )
    rows: list[Row] = []
    started = time.monotonic()
    for workers in args.workers:
        try:
            rows.extend(run_server_config(args, workers, load, log))
        except (BenchError, RuntimeError) as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
    log(f"\n(total {time.monotonic() - started:.0f} s)")

    for workers in args.workers:
        mine = [r for r in rows if r.workers == workers]
        log(f"\n== server: {workers} worker(s) x {args.threads} threads; load: {loader}")
        log(table(mine, client_capacity))
    log(
        "\nrate ratio = req/s / req/s of /version; CPU ratio = server CPU per request / that of /version;\n"
        "+CPU = server CPU per request above /version's (the KMIP layer's own cost);\n"
        "srv, per worker, client and other CPU % are in percent of one core; other = processes that are neither the "
        f"server nor\nthe load generator ({os.cpu_count()} cores in all, shared by everything)."
    )
    busiest = max(rows, key=lambda r: r.other_cpu_percent, default=None)
    if busiest is not None and busiest.other_cpu_percent > OTHER_CPU_WARNING:
        log(
            f"WARNING: other processes used up to {busiest.other_cpu_percent:.0f} % of a core during the runs "
            f"({busiest.op}, clients={busiest.clients}, workers={busiest.workers}): rates and latencies are "
            "disturbed,\nCPU per request less so. Rerun on a quiet machine for figures to compare."
        )
    if not use_wrk:
        log("NOTE: Python load generator: rates are CLIENT-bound; CPU per request is still the server's own.")

    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "load_generator": loader,
                    "cpus": os.cpu_count(),
                    "duration": args.duration,
                    "warmup": args.warmup,
                    "threads": args.threads,
                    "rows": [_row_json(r) for r in rows],
                },
                indent=2,
            )
            + "\n"
        )

    errors = sum(r.load.errors for r in rows)
    warm_errors = sum(r.warmup_errors for r in rows)
    if errors or warm_errors:
        bar = "!" * 100
        log(
            f"\n{bar}\n!!! {errors} FAILED REQUESTS in measured runs ({warm_errors} in warm-ups): "
            "the figures above are NOT valid."
        )
        for r in rows:
            if r.load.errors or r.warmup_errors:
                log(
                    f"!!!   workers={r.workers} {r.op} clients={r.clients}: {r.load.non_200} non-200, "
                    f"{r.load.socket_errors} socket errors; first: {r.load.first_error or r.warmup_first_error}"
                )
        log(bar)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
