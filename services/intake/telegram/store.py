"""The bot's tables in the ``intake`` schema: chat state, seen update ids, which chat
made which complaint, draft photos, and the durable notification queue.

Why our own state table and not a ``BasePersistence``: PTB's persistence keeps every
conversation in memory and writes it back on an interval (or at shutdown), so a crash
loses the last steps and two intake replicas behind the webhook would each hold a
different copy. One row per chat, read and written on every update, is exact, works
with any number of replicas, and survives a SIGKILL.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


@dataclass
class Chat:
    """A chat's conversation state (``draft`` is the report being written)."""

    chat_id: int
    locale: str = "id"
    state: str = "idle"
    draft: dict[str, Any] = field(default_factory=dict)
    answer_for: uuid.UUID | None = None
    blocked: bool = False


async def claim_update(conn: Conn, update_id: int) -> bool:
    """Record ``update_id``; False if it was recorded before (a retried delivery)."""
    return await conn.fetchval(
        "INSERT INTO intake.telegram_updates (update_id) VALUES ($1)"
        " ON CONFLICT DO NOTHING RETURNING true", update_id) is not None


async def load_chat(conn: Conn, chat_id: int, locale: str) -> Chat:
    """The chat's state (a new idle one the first time). Writing to the bot again
    lifts a block, and the chat's language follows the user's current one."""
    row = await conn.fetchrow(
        "INSERT INTO intake.telegram_chats (chat_id, locale) VALUES ($1, $2)"
        " ON CONFLICT (chat_id) DO UPDATE SET locale = EXCLUDED.locale, blocked_at = NULL"
        " RETURNING state, draft, answer_for", chat_id, locale)
    assert row is not None
    draft = row["draft"]
    return Chat(chat_id=chat_id, locale=locale, state=row["state"],
                draft=json.loads(draft) if isinstance(draft, str) else dict(draft),
                answer_for=row["answer_for"])


async def save_chat(conn: Conn, chat: Chat) -> None:
    await conn.execute(
        "UPDATE intake.telegram_chats SET state = $2, draft = $3::jsonb, answer_for = $4,"
        " updated_at = now() WHERE chat_id = $1",
        chat.chat_id, chat.state, chat.draft, chat.answer_for)


async def mark_blocked(conn: Conn, chat_id: int) -> None:
    await conn.execute(
        "INSERT INTO intake.telegram_chats (chat_id, blocked_at) VALUES ($1, now())"
        " ON CONFLICT (chat_id) DO UPDATE SET blocked_at = now()", chat_id)


async def set_answer_for(conn: Conn, chat_id: int, complaint_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE intake.telegram_chats SET answer_for = $2 WHERE chat_id = $1",
        chat_id, complaint_id)


# --- draft photos ------------------------------------------------------------------

async def add_photo(pool: asyncpg.Pool, chat_id: int, draft_id: str, content_type: str,
                    data: bytes, limit: int) -> int:
    """Store one photo of the draft; returns how many it has now (at most ``limit``)."""
    async with pool.acquire() as c, c.transaction():
        # Serialise a chat's photo uploads on its state row.
        await c.execute("SELECT 1 FROM intake.telegram_chats WHERE chat_id = $1 FOR UPDATE",
                        chat_id)
        n = await c.fetchval(
            "SELECT count(*) FROM intake.telegram_draft_photos WHERE chat_id = $1"
            " AND draft_id = $2", chat_id, draft_id)
        if n >= limit:
            return int(n)
        await c.execute(
            "INSERT INTO intake.telegram_draft_photos VALUES ($1, $2, $3, $4, $5)",
            chat_id, draft_id, n, content_type, data)
        return int(n) + 1


async def draft_photos(conn: Conn, chat_id: int, draft_id: str) -> list[tuple[str, bytes]]:
    rows = await conn.fetch(
        "SELECT content_type, data FROM intake.telegram_draft_photos WHERE chat_id = $1"
        " AND draft_id = $2 ORDER BY seq", chat_id, draft_id)
    return [(r["content_type"], bytes(r["data"])) for r in rows]


async def count_photos(conn: Conn, chat_id: int, draft_id: str) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM intake.telegram_draft_photos WHERE chat_id = $1"
        " AND draft_id = $2", chat_id, draft_id))


async def drop_photos(conn: Conn, chat_id: int) -> None:
    await conn.execute("DELETE FROM intake.telegram_draft_photos WHERE chat_id = $1", chat_id)


# --- reports ------------------------------------------------------------------------

async def add_report(conn: Conn, key: str, chat_id: int) -> None:
    await conn.execute(
        "INSERT INTO intake.telegram_reports (idempotency_key, chat_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING", key, chat_id)


async def report_submitted(conn: Conn, key: str, complaint_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE intake.telegram_reports SET complaint_id = $2 WHERE idempotency_key = $1",
        key, complaint_id)


async def report_of(conn: Conn, chat_id: int, complaint_id: uuid.UUID) -> str | None:
    """The Idempotency-Key this chat submitted ``complaint_id`` under (None if the
    complaint is not this chat's)."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT idempotency_key FROM intake.telegram_reports WHERE chat_id = $1"
        " AND complaint_id = $2", chat_id, complaint_id)


async def chats_of_complaint(conn: Conn, complaint_id: str) -> list[int]:
    rows = await conn.fetch(
        "SELECT r.chat_id FROM intake.telegram_reports r WHERE r.complaint_id = $1::text::uuid"
        " UNION SELECT r.chat_id FROM intake.telegram_reports r"
        " JOIN intake.idempotency_keys k ON k.key = r.idempotency_key"
        " WHERE k.body ->> 'complaint_id' = $1::text", complaint_id)
    return [r["chat_id"] for r in rows]


async def reports_of_chat(conn: Conn, chat_id: int, limit: int = 10) -> list[asyncpg.Record]:
    return await conn.fetch(  # type: ignore[no-any-return]
        "SELECT c.tracking_code, c.status, c.submitted_at FROM intake.telegram_reports r"
        " JOIN intake.complaints c ON c.id = r.complaint_id WHERE r.chat_id = $1"
        " ORDER BY c.submitted_at DESC LIMIT $2", chat_id, limit)


# --- the notification queue ---------------------------------------------------------

async def queue_notification(conn: asyncpg.Connection, event_id: uuid.UUID | str, chat_id: int,
                             complaint_id: str, kind: str, params: dict[str, Any]) -> None:
    """INSERT only: this runs inside the consumer's transaction."""
    await conn.execute(
        "INSERT INTO intake.telegram_notifications (event_id, chat_id, complaint_id, kind,"
        " params) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING",
        uuid.UUID(str(event_id)), chat_id, uuid.UUID(complaint_id), kind, params)


@dataclass(frozen=True)
class Due:
    id: int
    chat_id: int
    complaint_id: uuid.UUID
    kind: str
    params: dict[str, Any]
    attempts: int
    blocked: bool


async def claim_due(pool: asyncpg.Pool, limit: int, lease: timedelta) -> list[Due]:
    """Claim up to ``limit`` due notifications for ``lease``.

    SKIP LOCKED lets several intake processes claim disjoint rows at once; the lease
    (next_attempt_at moved forward, committed before sending) keeps the rows ours
    while we talk to Telegram without holding a transaction open, and hands them back
    if this process dies mid-send (at least once: a crash may repeat one message)."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT n.id, n.chat_id, n.complaint_id, n.kind, n.params, n.attempts,"
            " (c.blocked_at IS NOT NULL) AS blocked"
            " FROM intake.telegram_notifications n"
            " LEFT JOIN intake.telegram_chats c ON c.chat_id = n.chat_id"
            " WHERE n.sent_at IS NULL AND n.failed_at IS NULL AND n.next_attempt_at <= $1"
            " ORDER BY n.next_attempt_at, n.id LIMIT $2 FOR UPDATE OF n SKIP LOCKED",
            now, limit)
        if rows:
            await conn.execute(
                "UPDATE intake.telegram_notifications SET next_attempt_at = $2,"
                " attempts = attempts + 1 WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows], now + lease)
    return [Due(id=r["id"], chat_id=r["chat_id"], complaint_id=r["complaint_id"],
                kind=r["kind"], params=json.loads(r["params"]) if isinstance(r["params"], str)
                else dict(r["params"]), attempts=r["attempts"] + 1, blocked=r["blocked"])
            for r in rows]


async def release(pool: Conn, ids: list[int]) -> None:
    """Hand claimed rows back, due now and their claim not counted as an attempt:
    a stopping sender never tried them."""
    await pool.execute(
        "UPDATE intake.telegram_notifications SET next_attempt_at = now(),"
        " attempts = attempts - 1 WHERE id = ANY($1::bigint[]) AND sent_at IS NULL"
        " AND failed_at IS NULL", ids)


async def mark_sent(pool: Conn, nid: int) -> None:
    await pool.execute(
        "UPDATE intake.telegram_notifications SET sent_at = now(), last_error = NULL"
        " WHERE id = $1", nid)


async def mark_failed(pool: Conn, nid: int, reason: str) -> None:
    await pool.execute(
        "UPDATE intake.telegram_notifications SET failed_at = now(), last_error = $2"
        " WHERE id = $1", nid, reason)


async def reschedule(pool: Conn, nid: int, at: datetime, reason: str) -> None:
    await pool.execute(
        "UPDATE intake.telegram_notifications SET next_attempt_at = $2, last_error = $3"
        " WHERE id = $1", nid, at, reason)


async def purge(pool: Conn, *, updates_older_than: timedelta = timedelta(days=7),
                notifications_older_than: timedelta = timedelta(days=30)) -> None:
    """Forget update ids (and processed inbox rows) long past Telegram's retries (it
    gives up within a day) and notifications long delivered or given up."""
    now = datetime.now(UTC)
    await pool.execute("DELETE FROM intake.telegram_updates WHERE processed_at < $1",
                       now - updates_older_than)
    await pool.execute("DELETE FROM intake.telegram_inbox WHERE processed_at < $1",
                       now - updates_older_than)
    await pool.execute(
        "DELETE FROM intake.telegram_notifications WHERE sent_at < $1 OR failed_at < $1",
        now - notifications_older_than)
