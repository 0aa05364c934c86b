"""The webhook's durable inbox and the worker that processes it.

``POST /telegram/webhook`` stores the update (``store_update``) and only then answers
200; if the database cannot take it, the webhook fails and Telegram sends it again.
``Inbox.run`` claims stored updates and hands each to the bot, then marks it done:

- A redelivered update (same ``update_id``) is stored once (the primary key).
- A chat's updates are processed one at a time, in ``update_id`` order, across every
  intake process: only the oldest unprocessed update of a chat can be claimed, and
  a claim is a lease written to the row (``FOR UPDATE SKIP LOCKED``, committed before
  the work starts, so no transaction stays open while the bot talks to Telegram).
- Chats are processed concurrently, at most ``concurrency`` at once per process
  (``lanes``: bounded by the database pool): a chat whose answers are slow holds
  only its own lane.
- A process killed before it processed an update leaves the row unprocessed: the
  next process (or another replica, once the lease expires) processes it. The bot's
  gate records each update id as its handling starts, so an update whose handling
  had begun when the process died is not repeated (it is at most once from there).
- A chat with ``MAX_WAITING`` updates already waiting has further ones stored as
  dropped (``outcome = 'flood'``), so one abusive chat cannot fill the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from opentelemetry.trace import TracerProvider

from awasi import jsoncodec, tracing

log = logging.getLogger(__name__)

MAX_WAITING = 30
LEASE = timedelta(seconds=120)
DRAIN_S = 10.0

Handle = Callable[[dict[str, Any]], Awaitable[None]]

# The lane of an update: its chat, or the update alone when it has no chat.
_LANE = "coalesce(chat_id, -update_id)"


async def store_update(conn: asyncpg.Connection | asyncpg.Pool, update_id: int,
                       chat_id: int | None, payload: bytes) -> str:
    """Store one update (a single statement, so its own transaction). Returns
    ``"stored"``, ``"duplicate"`` (this update_id was stored before) or ``"flood"``
    (stored as dropped: the chat already has ``MAX_WAITING`` updates waiting)."""
    # The webhook call's trace context is kept with the update: the worker processes
    # it in the same trace.
    row = await conn.fetchrow(
        f"WITH waiting AS (SELECT count(*) >= $4 AS is_full FROM intake.telegram_inbox"
        f" WHERE {_LANE} = coalesce($2::bigint, -$1::bigint) AND processed_at IS NULL)"
        " INSERT INTO intake.telegram_inbox"
        " (update_id, chat_id, payload, processed_at, outcome, trace_context)"
        " SELECT $1, $2, CASE WHEN is_full THEN NULL ELSE $3::bytea END,"
        " CASE WHEN is_full THEN now() END, CASE WHEN is_full THEN 'flood' END, $5::jsonb"
        " FROM waiting ON CONFLICT (update_id) DO NOTHING RETURNING outcome",
        update_id, chat_id, payload, MAX_WAITING, tracing.carrier())
    if row is None:
        return "duplicate"
    return "flood" if row["outcome"] == "flood" else "stored"


async def claim(pool: asyncpg.Pool, limit: int, lease: timedelta = LEASE,
                ) -> list[tuple[int, bytes, dict[str, str] | None]]:
    """Lease up to ``limit`` updates, each the oldest unprocessed one of its chat;
    returns ``(update_id, payload, trace_context)`` in update order.

    The lease and ``processed_at`` are tested on the locked row itself: under READ
    COMMITTED a row locked after another worker committed its lease (or its
    completion) is re-checked against its new version and left out."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            f"WITH heads AS (SELECT DISTINCT ON ({_LANE}) update_id FROM intake.telegram_inbox"
            f" WHERE processed_at IS NULL ORDER BY {_LANE}, update_id)"
            " SELECT i.update_id, i.payload, i.trace_context FROM intake.telegram_inbox i"
            " JOIN heads h ON h.update_id = i.update_id"
            " WHERE i.processed_at IS NULL AND (i.leased_until IS NULL OR i.leased_until < $1)"
            " ORDER BY i.update_id LIMIT $2 FOR UPDATE OF i SKIP LOCKED", now, limit)
        if rows:
            await conn.execute(
                "UPDATE intake.telegram_inbox SET leased_until = $2, attempts = attempts + 1"
                " WHERE update_id = ANY($1::bigint[])",
                [r["update_id"] for r in rows], now + lease)
    return [(r["update_id"], bytes(r["payload"]), r["trace_context"]) for r in rows]


async def mark_done(pool: asyncpg.Pool, update_id: int, outcome: str | None = None) -> None:
    """Processed: the payload (the citizen's words) is emptied, the id kept for dedupe."""
    await pool.execute(
        "UPDATE intake.telegram_inbox SET processed_at = now(), payload = NULL,"
        " leased_until = NULL, outcome = $2 WHERE update_id = $1", update_id, outcome)


def lanes(pool_max: int) -> int:
    """How many chats one process handles at once: half the database pool, 1 to 8.
    A handler holds one connection for its chat's advisory lock and takes a second
    for its work (never more at once): lanes that each hold two at most never take
    the whole pool from one another, and lock holders always leave a connection for
    one of them to finish. 5 with the default pool of 10."""
    return max(1, min(8, pool_max // 2))


class Inbox:
    """Processes stored updates with ``handle`` until cancelled (see the module)."""

    def __init__(self, pool: asyncpg.Pool, handle: Handle, *, concurrency: int = 8,
                 poll_s: float = 0.5, tracer_provider: TracerProvider | None = None,
                 ) -> None:
        self.pool = pool
        self.tracer_provider = tracer_provider
        self.handle = handle
        self.concurrency = concurrency
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """A new update was stored by this process: look now, not at the next poll.
        (Updates stored by other replicas are found by polling.)"""
        self._wake.set()

    async def run(self) -> None:
        if self.tracer_provider is not None:
            tracing.bind(self.tracer_provider)  # the updates' tasks inherit it
        try:
            while True:
                self._wake.clear()
                await self._fill()
                waiter = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({waiter, *self._tasks}, timeout=self.poll_s,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
        finally:
            await self._drain()

    async def _fill(self) -> None:
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            return
        try:
            claimed = await claim(self.pool, free)
        except (asyncpg.PostgresError, OSError) as e:
            log.warning("telegram inbox: database unavailable", extra={"error": repr(e)})
            return
        for update_id, payload, trace_context in claimed:
            task = asyncio.ensure_future(self._process(update_id, payload, trace_context))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()  # the chat's next update may be claimed now

    async def _process(self, update_id: int, payload: bytes,
                       trace_context: dict[str, str] | None = None) -> None:
        try:
            # A child of the webhook call that stored it: a complaint filed in the chat
            # is one trace from Telegram's call to oversight's timeline.
            with tracing.span("telegram update", context=tracing.extract(trace_context)):
                await self.handle(jsoncodec.loads(payload))
        except Exception:  # noqa: BLE001 - one bad update must not stop its chat
            # The bot's own error handler has already told the citizen where it could;
            # retrying would be dropped by the gate (the update id is recorded).
            log.exception("telegram update failed in the inbox",
                          extra={"update_id": update_id})
        try:
            await mark_done(self.pool, update_id)
        except (asyncpg.PostgresError, OSError) as e:
            # The lease expires and the update is claimed again; the gate drops it.
            log.warning("telegram inbox: could not mark an update done",
                        extra={"update_id": update_id, "error": repr(e)})

    async def _drain(self) -> None:
        """On shutdown let the updates in hand finish (a bounded wait), then stop."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=DRAIN_S)
        for t in pending:
            t.cancel()
        for t in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await t
