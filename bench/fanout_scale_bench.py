"""How a topic send's cost grows with its recipients: 1K, 10K, 100K subscribers.

Per backend, one ``notify up`` in a child process (unpinned). For each size, that many
users subscribe to a fresh topic over REST, then one topic send goes out and the bench
polls until

- **fanned out**: ``GET /topic-sends/{id}`` says ``done`` (every subscriber's notification
  accepted), and
- **routed**: every one of those notifications has left ``accepted`` (read from the
  database), each with its inbox row and decisions.

It reports both times, recipients per second, the server's CPU seconds per 1,000
recipients (``/proc``; linear growth means a flat column) and the decision rows written
per recipient. Nobody is connected: this measures the accept and route path, not the
live publish (``ws_scale_bench.py`` does that).

    .venv/bin/python bench/fanout_scale_bench.py --sizes 1000,10000,100000
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from common import (
    API_KEY,
    BACKENDS,
    background_load,
    exit_on_sigterm,
    notify_server,
    print_table,
    process_cpu_seconds,
    write_result,
)

SUBSCRIBE_CHUNK = 10_000
PRODUCER = {"Authorization": f"Bearer {API_KEY}"}


def _engine(database_url: str) -> sa.Engine:
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    return sa.create_engine(url)


def _counts(engine: sa.Engine, key: str) -> tuple[int, int, int]:
    """(notifications with ``key``, of them still accepted, their decision rows)."""
    with engine.connect() as conn:
        total, waiting = conn.execute(
            sa.text(
                "SELECT count(*), count(*) FILTER (WHERE state = 'accepted')"
                " FROM notifications WHERE idempotency_key = :k"
            ),
            {"k": key},
        ).one()
        rows = conn.execute(
            sa.text(
                "SELECT count(*) FROM notification_deliveries d JOIN notifications n"
                " ON n.id = d.notification_id WHERE n.idempotency_key = :k"
            ),
            {"k": key},
        ).scalar_one()
    return int(total), int(waiting), int(rows)


def _wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the fan-out did not finish in time")
        time.sleep(0.05)


def run_size(client: httpx.Client, engine: sa.Engine, pid: int, size: int) -> dict[str, Any]:
    topic = f"bench.{uuid.uuid4().hex[:10]}"
    prefix = uuid.uuid4().hex[:6]
    users = [f"{prefix}-{i:07d}" for i in range(size)]
    for start in range(0, size, SUBSCRIBE_CHUNK):
        r = client.put(
            f"/topics/{topic}/subscribers",
            json={"user_ids": users[start : start + SUBSCRIBE_CHUNK]},
            headers=PRODUCER,
        )
        r.raise_for_status()
    cpu0 = process_cpu_seconds(pid)
    t0 = time.perf_counter()
    r = client.post(
        "/notifications/send",
        json={"topic": topic, "type": "news", "title": "Launch", "message": "We launched"},
        headers=PRODUCER,
    )
    r.raise_for_status()
    send_id = r.json()["id"]
    key = f"topic:{send_id}"

    def fanned() -> bool:
        state = client.get(f"/topic-sends/{send_id}", headers=PRODUCER).json()
        return bool(state["state"] == "done")

    _wait(fanned, timeout=60 + size / 100)
    fanned_s = time.perf_counter() - t0

    def routed() -> bool:
        total, waiting, _ = _counts(engine, key)
        return total == size and waiting == 0

    _wait(routed, timeout=60 + size / 50)
    routed_s = time.perf_counter() - t0
    cpu = process_cpu_seconds(pid) - cpu0
    _, _, rows = _counts(engine, key)
    return {
        "recipients": size,
        "fanned_out_s": round(fanned_s, 2),
        "routed_s": round(routed_s, 2),
        "recipients_per_s": round(size / routed_s, 1),
        "cpu_s_per_1k": round(cpu * 1000 / size, 3),
        "rows_per_recipient": round(rows / size, 2),
    }


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--name", default="fanout-scale")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    busy = background_load()
    results: list[dict[str, Any]] = []
    for backend in args.backends.split(","):
        with notify_server(backend, timeout=120) as server:
            engine = _engine(server.database_url)
            try:
                with httpx.Client(base_url=server.base_url, timeout=60) as client:
                    for size in sizes:
                        row = {"backend": backend, **run_size(client, engine, server.pid, size)}
                        print(row, flush=True)
                        results.append(row)
            finally:
                engine.dispose()
    print(f"\nmachine busy before the run: {busy:.0%}")
    columns = [
        "backend",
        "recipients",
        "fanned_out_s",
        "routed_s",
        "recipients_per_s",
        "cpu_s_per_1k",
        "rows_per_recipient",
    ]
    print_table(results, columns)
    path = write_result(args.name, {"background_load": busy, "results": results})
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
