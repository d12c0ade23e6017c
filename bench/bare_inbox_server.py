"""The baseline of ``inbox_bench.py``: a bare Starlette + uvicorn inbox on the same database.

``GET /notifications?page=&limit=`` and ``GET /notifications/unread-count`` answer what
Notify's edge answers, from the same ``notifications`` table: the user's HS256 token
checked with PyJWT (every request), one SQL statement (the page with its unread count as a
scalar subquery, or the count alone) through the async driver Notify uses (aiosqlite for
``sqlite:///…``, psycopg for ``postgresql://…``, a few autocommit connections), the rows
encoded with ``json.dumps``. No cache, no pooling library, no error shapes beyond a 401.

Prints ``bare-inbox: listening on :<port>`` once it listens; SIGTERM stops it.

    .venv/bin/python bench/bare_inbox_server.py --database-url sqlite:///notify.db \\
        --port 8099 --jwt-secret s3cret
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_PAGE = """
SELECT id, user_id, type, title, message, data, priority, read, created_at, count,
       (SELECT count(*) FROM notifications
         WHERE user_id = {p} AND inbox = {true} AND read = {false}) AS unread
  FROM notifications WHERE user_id = {p} AND inbox = {true}
 ORDER BY created_at DESC, id DESC LIMIT {p} OFFSET {p}
"""
_COUNT = (
    "SELECT count(*) FROM notifications WHERE user_id = {p} AND inbox = {true} AND read = {false}"
)


class Rows:
    """A few autocommit connections to the database, one statement at a time on each."""

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size = url, size
        self.sqlite = url.startswith("sqlite")
        marks = {"p": "?", "true": "1", "false": "0"} if self.sqlite else {}
        marks = marks or {"p": "%s", "true": "true", "false": "false"}
        self.page_sql, self.count_sql = _PAGE.format(**marks), _COUNT.format(**marks)
        self._free: asyncio.Queue[Any] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            if self.sqlite:
                import aiosqlite

                conn: Any = await aiosqlite.connect(
                    self.url.removeprefix("sqlite:///"), isolation_level=None
                )
            else:
                import psycopg

                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            self._free.put_nowait(conn)

    async def close(self) -> None:
        while not self._free.empty():
            await self._free.get_nowait().close()

    async def fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = await self._free.get()
        try:
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall())
        finally:
            self._free.put_nowait(conn)


def app(rows: Rows, secret: str) -> Starlette:
    def user(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        try:
            claims = jwt.decode(header[7:], secret, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            return None
        return str(claims["sub"])

    def denied() -> Response:
        return Response(b'{"error":"unauthenticated"}', 401, media_type="application/json")

    def as_json(row: tuple[Any, ...], load: Callable[[Any], Any]) -> dict[str, Any]:
        return {
            "id": row[0],
            "user_id": row[1],
            "type": row[2],
            "title": row[3],
            "message": row[4],
            "data": load(row[5]) or {},
            "priority": row[6],
            "read": bool(row[7]),
            "created_at": str(row[8]),
            "count": row[9],
        }

    load = (lambda v: json.loads(v) if v else None) if rows.sqlite else (lambda v: v)

    async def notifications(request: Request) -> Response:
        user_id = user(request)
        if user_id is None:
            return denied()
        page = int(request.query_params.get("page") or 1)
        limit = int(request.query_params.get("limit") or 20)
        params = (user_id, user_id, limit + 1, (page - 1) * limit)
        found = await rows.fetch(rows.page_sql, params)
        body = {
            "notifications": [as_json(r, load) for r in found[:limit]],
            "page": page,
            "limit": limit,
            "has_more": len(found) > limit,
            "unread_count": found[0][10] if found else 0,
        }
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")

    async def unread_count(request: Request) -> Response:
        user_id = user(request)
        if user_id is None:
            return denied()
        found = await rows.fetch(rows.count_sql, (user_id,))
        return Response(b'{"unread_count":%d}' % found[0][0], media_type="application/json")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await rows.open()
        yield
        await rows.close()

    return Starlette(
        routes=[
            Route("/notifications", notifications),
            Route("/notifications/unread-count", unread_count),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="a bare Starlette inbox (inbox_bench baseline)")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    url = args.database_url.replace("postgresql+psycopg://", "postgresql://")
    config = uvicorn.Config(
        app(Rows(url, args.connections), args.jwt_secret),
        host="127.0.0.1",
        port=args.port,
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.02)
        print(f"bare-inbox: listening on :{args.port}", flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
