"""Every route of the edge was declared with an auth policy, and every route that needs
credentials refuses a caller without them (or with the other kind)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.routing import Route, WebSocketRoute

from notify_core.routes import PRODUCER, USER, WEBSOCKET, HttpRoute, Policy
from tests.support.nodes import Env, embedded_settings, running


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Env]:
    async with running(embedded_settings(tmp_path)) as env:
        yield env


def declared(env: Env) -> tuple[HttpRoute, ...]:
    assert env.node.edge is not None
    routes: tuple[HttpRoute, ...] = env.node.edge.app.state.routes
    return routes


async def test_every_route_of_the_edge_was_declared_with_a_policy(edge: Env) -> None:
    assert edge.node.edge is not None
    policies = {(r.method, r.path): r.policy for r in declared(edge)}
    served = set()
    for route in edge.node.edge.app.routes:
        if isinstance(route, WebSocketRoute):
            served.add((WEBSOCKET, route.path))
        else:
            assert isinstance(route, Route) and route.methods is not None
            served |= {(m, route.path) for m in route.methods - {"HEAD"}}
    assert served == set(policies)
    assert all(isinstance(p, Policy) for p in policies.values())


async def test_every_route_needing_credentials_refuses_a_stranger(edge: Env) -> None:
    guarded = [r for r in declared(edge) if r.policy in (PRODUCER, USER)]
    assert len(guarded) > 30
    wrong_kind = {PRODUCER: edge.user("u1"), USER: edge.producer}
    failures = []
    for route in guarded:
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for headers in ({}, wrong_kind[route.policy]):
            r = await edge.http.request(route.method, path, headers=headers)
            if r.status_code != 401 or r.json()["error"]["code"] != "unauthenticated":
                failures.append(f"{route.method} {route.path} {bool(headers)}: {r.status_code}")
    assert failures == []
