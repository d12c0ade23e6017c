"""Accepted means durable (DESIGN §7): kill -9 while sends are in flight, restart, and
every notification that got 202 is in the inbox exactly once — on both backends."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from notify_core.auth import issue_user_token
from tests.support.nodes import API_KEY, JWT_SECRET
from tests.support.procs import NotifyProcess, base_env


async def _inbox_ids(client: httpx.AsyncClient, user: str) -> list[str]:
    headers = {"authorization": f"Bearer {issue_user_token(JWT_SECRET, user)}"}
    ids: list[str] = []
    page = 1
    while True:
        r = await client.get("/notifications", params={"page": page, "limit": 100}, headers=headers)
        r.raise_for_status()
        body = r.json()
        ids += [n["id"] for n in body["notifications"]]
        if not body["has_more"]:
            return ids
        page += 1


@pytest.mark.parametrize("kind", ["embedded", "real"])
async def test_kill9_during_sends_loses_nothing_and_doubles_nothing(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, namespace: str
) -> None:
    env = base_env(kind, tmp_path, request, namespace)
    log = tmp_path / "notify.log"
    node = NotifyProcess(env, log=log).start()
    users = [f"crash-{uuid.uuid4().hex[:8]}" for _ in range(10)]
    accepted: dict[str, str] = {}  # id -> user
    stop = asyncio.Event()
    enough = asyncio.Event()  # enough sends accepted to prove something
    headers = {"authorization": f"Bearer {API_KEY}"}

    async def producer(client: httpx.AsyncClient, user: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            body = {"user_id": user, "type": "crash", "title": f"{n}", "message": "m"}
            try:
                r = await client.post("/notifications/send", json=body, headers=headers)
            except httpx.HTTPError:
                return  # the server died mid-request: not accepted, nothing promised
            if r.status_code == 202:
                accepted[r.json()["id"]] = user
                if len(accepted) > 50:
                    enough.set()

    async with httpx.AsyncClient(base_url=node.base_url, timeout=5) as client:
        tasks = [asyncio.create_task(producer(client, u)) for u in users for _ in range(5)]
        # Kill once enough sends were accepted, however busy the machine is.
        await asyncio.wait_for(enough.wait(), 60)
        node.kill9()
        stop.set()
        await asyncio.gather(*tasks)
    assert len(accepted) > 50, "too few sends were accepted before the kill to prove anything"

    node = NotifyProcess(env, log=log).start()
    try:
        async with httpx.AsyncClient(base_url=node.base_url, timeout=10) as client:
            deadline = time.monotonic() + 90
            while True:
                seen = Counter()
                for user in users:
                    seen.update(await _inbox_ids(client, user))
                missing = set(accepted) - set(seen)
                if not missing or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        assert not missing, f"{len(missing)} accepted notifications never reached the inbox"
        doubled = [nid for nid, count in seen.items() if count > 1]
        assert not doubled
    finally:
        node.stop()


async def test_two_nodes_share_live_delivery(
    tmp_path: Path, request: pytest.FixtureRequest, namespace: str
) -> None:
    import json

    import websockets

    env = base_env("real", tmp_path, request, namespace)
    a = NotifyProcess(env, log=tmp_path / "a.log").start()
    b = NotifyProcess(env, log=tmp_path / "b.log").start()
    try:
        user = f"two-{uuid.uuid4().hex[:8]}"
        token = issue_user_token(JWT_SECRET, user)
        async with websockets.connect(f"{a.ws_url}?token={token}") as ws:
            pending = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert pending["type"] == "pending"
            async with httpx.AsyncClient(base_url=b.base_url, timeout=5) as client:
                ids = []
                for i in range(5):
                    r = await client.post(
                        "/notifications/send",
                        json={"user_id": user, "type": "t", "title": f"{i}", "message": "m"},
                        headers={"authorization": f"Bearer {API_KEY}"},
                    )
                    assert r.status_code == 202
                    ids.append(r.json()["id"])
            got = []
            while len(got) < len(ids):
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert event["type"] == "notification"
                got.append(event["notification"]["id"])
            assert sorted(got) == sorted(ids)
    finally:
        a.stop()
        b.stop()
