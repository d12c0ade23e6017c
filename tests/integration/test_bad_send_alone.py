"""A bad send fails alone: concurrent sends are committed together, and one that cannot be
stored never takes the others down with it, on both backends.

A value validation knows is refused there (400). One only the database refuses (here a
trigger this test installs) fails its group's commit; the group is then committed send
by send, and only that send fails — 500 ``internal``, its details in the log only, over
REST and gRPC alike.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from notify.v1 import ingest_pb2, ingest_pb2_grpc

from notify_core.db.schema import notifications
from notify_core.errors import INTERNAL_MESSAGE
from tests.support.ids import uid
from tests.support.nodes import Env

SENDS = 90


async def stored(env: Env, user: str) -> int:
    assert env.node.database is not None
    async with env.node.database.read() as conn:
        result = await conn.execute(
            sa.select(sa.func.count())
            .select_from(notifications)
            .where(notifications.c.user_id == user)
        )
        return int(result.scalar_one())


async def send_together(env: Env, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    return await asyncio.gather(
        *(env.http.post("/notifications/send", json=b, headers=env.producer) for b in bodies)
    )


def bodies(user: str, bad: int, **bad_fields: Any) -> list[dict[str, Any]]:
    sends = [
        {"user_id": user, "type": "comment", "title": f"t{i}", "message": "m"} for i in range(SENDS)
    ]
    sends[bad].update(bad_fields)
    return sends


async def test_a_send_with_nul_in_data_fails_alone(env: Env) -> None:
    user = uid("alone")
    answers = await send_together(env, bodies(user, 45, data={"note": "a\u0000b"}))
    assert [r.status_code for r in answers].count(202) == SENDS - 1
    assert answers[45].status_code == 400, answers[45].text
    assert answers[45].json()["error"]["message"].startswith("data.note:")
    assert await stored(env, user) == SENDS - 1


@asynccontextmanager
async def refused_title(env: Env) -> AsyncIterator[str]:
    """A title the database refuses (a trigger on ``notifications``), dropped on the way out."""
    db = env.node.database
    assert db is not None
    name = f"refuse_{uuid.uuid4().hex[:12]}"
    title = f"poison-{name}"
    if db.is_sqlite:
        create = [
            f"CREATE TRIGGER {name} BEFORE INSERT ON notifications WHEN NEW.title = '{title}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
        ]
        drop = [f"DROP TRIGGER {name}"]
    else:
        create = [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.title = '{title}' THEN RAISE EXCEPTION 'refused by the test trigger'; "
            "END IF; RETURN NEW; END $$",
            f"CREATE TRIGGER {name} BEFORE INSERT ON notifications "
            f"FOR EACH ROW EXECUTE FUNCTION {name}()",
        ]
        drop = [f"DROP TRIGGER {name} ON notifications", f"DROP FUNCTION {name}()"]
    async with db.write() as conn:
        for statement in create:
            await conn.execute(sa.text(statement))
    try:
        yield title
    finally:
        async with db.write() as conn:
            for statement in drop:
                await conn.execute(sa.text(statement))


async def test_a_send_the_database_refuses_fails_alone_and_says_nothing_of_why(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    user = uid("alone")
    async with refused_title(env) as title:
        answers = await send_together(env, bodies(user, 45, title=title))
        assert [r.status_code for r in answers].count(202) == SENDS - 1
        assert answers[45].status_code == 500
        assert answers[45].json() == {"error": {"code": "internal", "message": INTERNAL_MESSAGE}}
        assert await stored(env, user) == SENDS - 1
        stub = ingest_pb2_grpc.IngestServiceStub(env.grpc_channel)
        request = ingest_pb2.SendRequest(user_id=user, type="comment", title=title, message="m")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Send(request, metadata=env.metadata)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details() == INTERNAL_MESSAGE
    assert "refused by the test trigger" in caplog.text  # the details are in the log
    assert await stored(env, user) == SENDS - 1
