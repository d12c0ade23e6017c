"""Resident memory of a node before any connection: ``notify up`` with edge processes,
against the bare ``websockets`` server with as many processes, in the same run.

For each work tree named by ``--trees`` (default: this one), ``notify up`` runs on the
real backend (PostgreSQL, Redis, RabbitMQ) with ``NOTIFY_EDGE_PROCESSES=--edge-procs``,
started by that tree's own ``.venv/bin/python`` so that its code is what runs. Once the
node is up and the resident sets have settled (no process grew by more than 1 MiB over
two seconds), the ``VmRSS`` of every process is read from ``/proc``: the node, its edge
processes, its worker processes (``NOTIFY_WORKER_PROCESSES``, from the node's log) and any
other child, and the sum of their proportional sets (``Pss``: a page shared by several
processes, such as a library's code, counted once in all). The bare server
(``bare_ws_server.py --procs --edge-procs``) is measured the same way. Nothing connects to
either.

Each tree also gets an import probe in a fresh interpreter: what an edge process loads
before it serves (``notify_app.cli``, the pickled settings and ``edge_node`` factory, the
node it builds), its seconds, resident set and which heavy libraries it brought in.

    .venv/bin/python bench/startup_memory_bench.py
    .venv/bin/python bench/startup_memory_bench.py --trees /work/main,. --edge-procs 8
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import ROOT, exit_on_sigterm, notify_server, print_table, write_result
from ws_scale_bench import bare_server, rss_bytes, tree_pids

HEAVY = ("boto3", "botocore", "pywebpush", "aiohttp", "twilio", "alembic", "h2", "jinja2")
"""Libraries an edge process does not use (delivery providers, migrations, rendering)."""

PROBE = """
import pickle, sys, time
t0 = time.perf_counter()
import notify_app.cli
from notify_app.node import edge_node
from notify_app.settings import load_settings
env = {"NOTIFY_REDIS_URL": "redis://127.0.0.1:6379/0", "NOTIFY_API_KEYS": "probe-key-0001"}
blob = pickle.dumps((load_settings(env, env_file=None), edge_node))
settings, factory = pickle.loads(blob)
factory(settings, [])
seconds = time.perf_counter() - t0
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
heavy = [m for m in HEAVY if m in sys.modules]
print(json.dumps({"seconds": seconds, "rss_mib": rss / 1024, "modules": len(sys.modules),
                  "heavy": heavy}))
"""


def pss_bytes(pid: int) -> int:
    """Proportional set: shared pages divided among the processes sharing them."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def settle(root: int, timeout: float = 30.0) -> dict[int, int]:
    """Every process's resident set once none grew by more than 1 MiB in two seconds."""
    last: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while True:
        now: dict[int, int] = {}
        for pid in tree_pids(root):
            with contextlib.suppress(OSError):
                now[pid] = rss_bytes(pid)
        steady = last and now.keys() == last.keys()
        if steady and all(now[p] - last[p] < 2**20 for p in now):
            return now
        if time.monotonic() > deadline:
            return now
        last = now
        time.sleep(2.0)


def _pids(log: str, what: str) -> set[int]:
    match = re.search(rf"{what} .*pids \[([\d, ]*)\]", log)
    return {int(p) for p in match.group(1).split(",") if p.strip()} if match else set()


def _row(
    server: str, root: int, rss: dict[int, int], edges: set[int], workers: set[int]
) -> dict[str, Any]:
    mib = {pid: b / 2**20 for pid, b in rss.items()}
    pss = 0
    for pid in rss:
        with contextlib.suppress(OSError):
            pss += pss_bytes(pid)
    edge = [mib[p] for p in edges if p in mib]
    worker = [mib[p] for p in workers if p in mib]
    other = [m for p, m in mib.items() if p != root and p not in edges and p not in workers]
    node_and_edges = mib[root] + sum(edge)
    return {
        "server": server,
        "processes": len(mib),
        "total_mib": round(sum(mib.values()), 1),
        "node_mib": round(mib[root], 1),
        "edge_mib_each": round(sum(edge) / len(edge), 1) if edge else None,
        "edges": len(edge),
        "workers_mib": round(sum(worker), 1),
        "other_mib": round(sum(other), 1),
        "node_and_edges_mib": round(node_and_edges, 1),
        "total_pss_mib": round(pss / 2**20, 1),
    }


def measure_notify(tree: Path, edge_procs: int) -> dict[str, Any]:
    python = str(tree / ".venv" / "bin" / "python")
    env = {"NOTIFY_EDGE_PROCESSES": str(edge_procs), "NOTIFY_LOG_LEVEL": "INFO"}
    with notify_server("real", None, 120, extra_env=env, python=python) as server:
        rss = settle(server.pid)
        log = server.log.read_text(errors="replace")
        edges = _pids(log, "edge processes listening")
        workers = _pids(log, "worker processes for")
        return _row(f"notify {tree.name}", server.pid, rss, edges, workers)


def measure_bare(procs: int) -> dict[str, Any]:
    with bare_server(procs, f"startup-mem-{uuid.uuid4().hex[:8]}", None) as server:
        rss = settle(server.pid)
        children = set(rss) - {server.pid}
        return _row("bare", server.pid, rss, children, set())


def probe(tree: Path) -> dict[str, Any]:
    code = f"import json\nHEAVY = {HEAVY!r}\n{PROBE}"
    out = subprocess.run(
        [str(tree / ".venv" / "bin" / "python"), "-c", code],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return {"tree": tree.name, **result}


@contextlib.contextmanager
def _interrupted() -> Iterator[None]:
    exit_on_sigterm()
    try:
        yield
    except KeyboardInterrupt:
        sys.exit(130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default=str(ROOT), help="comma-separated work trees")
    parser.add_argument("--edge-procs", type=int, default=8, help="NOTIFY_EDGE_PROCESSES")
    parser.add_argument("--rounds", type=int, default=1, help="times through every server")
    parser.add_argument("--name", default="startup_memory")
    args = parser.parse_args()
    trees = [Path(t).resolve() for t in args.trees.split(",") if t]
    rows: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    with _interrupted():
        for _ in range(args.rounds):
            rows.append(measure_bare(args.edge_procs))
            print_table(rows[-1:], list(rows[-1]))
            for tree in trees:
                probes.append(probe(tree))
                print(json.dumps(probes[-1]), flush=True)
                rows.append(measure_notify(tree, args.edge_procs))
                print_table(rows[-1:], list(rows[-1]))
    print_table(rows, list(rows[0]))
    path = write_result(
        args.name,
        {
            "edge_procs": args.edge_procs,
            "trees": [str(t) for t in trees],
            "rows": rows,
            "probes": probes,
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
