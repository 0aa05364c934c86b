"""The e-mail queue's SQL (``intake.email_notifications``): queue inside the
consumer's transaction, claim due rows, mark them sent, failed or due again.

The queue holds no personal data: the address and the citizen's language are read
from ``intake.reporters`` when the message is built, so a contact erased in the
meantime is never written to."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def queue(conn: asyncpg.Connection, event_id: uuid.UUID | str, complaint_id: str,
                kind: str, params: dict[str, Any]) -> None:
    """Queue one e-mail for this event if the complaint's reporter left an address.
    INSERT only (this runs inside the consumer's transaction); an event seen before
    queues nothing (unique on ``event_id``). Anonymous reports have no reporter row,
    so they never get one."""
    await conn.execute(
        "INSERT INTO intake.email_notifications (event_id, complaint_id, kind, params)"
        " SELECT $1, r.complaint_id, $3, $4::jsonb FROM intake.reporters r"
        " WHERE r.complaint_id = $2 AND r.email IS NOT NULL AND r.email <> ''"
        " ON CONFLICT (event_id) DO NOTHING",
        uuid.UUID(str(event_id)), uuid.UUID(complaint_id), kind, params)


@dataclass(frozen=True)
class Due:
    id: int
    complaint_id: uuid.UUID
    kind: str
    params: dict[str, Any]
    attempts: int
    created_at: datetime


async def claim_due(pool: asyncpg.Pool, limit: int, lease: timedelta) -> list[Due]:
    """Claim up to ``limit`` due e-mails for ``lease``, oldest first.

    FOR UPDATE SKIP LOCKED lets several intake processes claim disjoint rows at once;
    the lease (``next_attempt_at`` moved forward, committed before sending) keeps the
    rows ours while we talk to the mail server without holding a transaction open,
    and hands them back if this process dies mid-send. That is the at-least-once
    edge: a crash after the server accepted a message and before ``mark_sent``
    committed sends it again after the lease, with the same Message-ID."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, complaint_id, kind, params, attempts, created_at"
            " FROM intake.email_notifications"
            " WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1"
            " ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            now, limit)
        if rows:
            await conn.execute(
                "UPDATE intake.email_notifications SET next_attempt_at = $2,"
                " attempts = attempts + 1 WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows], now + lease)
    return [Due(id=r["id"], complaint_id=r["complaint_id"], kind=r["kind"],
                params=json.loads(r["params"]) if isinstance(r["params"], str)
                else dict(r["params"]), attempts=r["attempts"] + 1,
                created_at=r["created_at"])
            for r in rows]


async def recipient(conn: Conn, complaint_id: uuid.UUID) -> asyncpg.Record | None:
    """The complaint's code, region, address and language, or None when no address
    is kept (any more)."""
    return await conn.fetchrow(
        "SELECT c.tracking_code, c.region, r.email, r.locale FROM intake.complaints c"
        " JOIN intake.reporters r ON r.complaint_id = c.id"
        " WHERE c.id = $1 AND r.email IS NOT NULL AND r.email <> ''", complaint_id)


async def mark_sent(pool: Conn, nid: int) -> None:
    await pool.execute(
        "UPDATE intake.email_notifications SET sent_at = now(), last_error = NULL"
        " WHERE id = $1", nid)


async def mark_failed(pool: Conn, nid: int, reason: str) -> None:
    await pool.execute(
        "UPDATE intake.email_notifications SET failed_at = now(), last_error = $2"
        " WHERE id = $1", nid, reason[:500])


async def reschedule(pool: Conn, nid: int, at: datetime, reason: str) -> None:
    await pool.execute(
        "UPDATE intake.email_notifications SET next_attempt_at = $2, last_error = $3"
        " WHERE id = $1", nid, at, reason[:500])


async def purge(pool: Conn, *, older_than: timedelta = timedelta(days=30)) -> None:
    """Forget e-mails long delivered or given up."""
    await pool.execute(
        "DELETE FROM intake.email_notifications WHERE sent_at < $1 OR failed_at < $1",
        datetime.now(UTC) - older_than)
