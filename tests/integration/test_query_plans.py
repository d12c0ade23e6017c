"""The inbox queries (a page with its unread count in one statement; the count alone) use
the original design's indexes on PostgreSQL (checked with EXPLAIN)."""

from __future__ import annotations

import psycopg
from sqlalchemy.dialects import postgresql

from notify_core.db.migrate import upgrade
from realtime_svc.inbox import page_query, unread_query


def _explain(conn: psycopg.Connection, query: object) -> str:
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    return "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}"))


def test_inbox_page_and_unread_count_use_their_indexes(postgres_url: str) -> None:
    upgrade(postgres_url)
    dsn = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """
            INSERT INTO notifications (id, user_id, type, title, message, priority, read,
                                       clicked, created_at, state, inbox)
            SELECT gen_random_uuid()::text, 'plan-user-' || (i % 500), 'comment', 't', 'm',
                   'normal', (i % 3 = 0), false, now() - (i || ' seconds')::interval,
                   'routed', true
            FROM generate_series(1, 50000) AS i
            """
        )
        conn.execute("ANALYZE notifications")
        page_plan = _explain(conn, page_query("plan-user-7", 1, 20))
        unread_plan = _explain(conn, unread_query("plan-user-7"))
        conn.rollback()
    assert "idx_notifications_user" in page_plan, page_plan
    assert "idx_notifications_unread" in page_plan, page_plan  # its unread count
    assert "Seq Scan" not in page_plan, page_plan
    assert "idx_notifications_unread" in unread_plan, unread_plan
    assert "Seq Scan" not in unread_plan, unread_plan
