"""Delivers the queued notifications (``intake.telegram_notifications``) to the chats.

A background task claims due rows (``store.claim_due``: FOR UPDATE SKIP LOCKED and a
lease), sends each through the bot (whose ``AIORateLimiter`` keeps to Telegram's
limits), and marks it sent. What Telegram answers decides what happens next:

- 403 Forbidden (the user blocked the bot): the chat is marked blocked and this and
  later notifications for it are given up, not retried;
- 429 RetryAfter: tried again after the time Telegram asked for;
- network errors and timeouts: tried again with exponential backoff;
- 400 BadRequest (e.g. the chat no longer exists): given up and logged.

Rows stay in the table until sent or given up, so an outage of Telegram (or of
intake) loses no notification.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from awasi.catalog import Catalog
from awasi.web.app import pause
from services.intake import db, domain
from services.intake.telegram import store
from services.intake.telegram.metrics import BotMetrics
from services.intake.telegram.texts import Texts

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
PURGE_EVERY_S = 3600.0
MAX_BACKOFF_S = 600.0


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... up to ten minutes."""
    return timedelta(seconds=min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1)))


def retry_after_seconds(err: RetryAfter) -> float:
    # PTB 22 warns when ``retry_after`` is read as an int (it is moving to timedelta).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: Any = err.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Sender:
    def __init__(self, pool: asyncpg.Pool, bot: Bot, catalog: Catalog, *,
                 interval_s: float = 0.5, batch: int = 20,
                 metrics: BotMetrics | None = None, intake_url: str = "") -> None:
        self.metrics = metrics or BotMetrics()
        self.pool = pool
        self.bot = bot
        self.catalog = catalog
        self.texts = Texts(catalog, intake_url=intake_url)
        self.interval_s = interval_s
        self.batch = batch
        # Set to stop after the notification in hand (awasi.web.app.background).
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        """Deliver until ``stopping`` is set (or cancelled); database trouble is logged
        and retried."""
        purged_at = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() - purged_at > PURGE_EVERY_S:
                    await store.purge(self.pool)
                    purged_at = time.monotonic()
                sent = await self.run_once()
            except (asyncpg.PostgresError, OSError) as e:
                log.warning("telegram sender: database unavailable", extra={"error": repr(e)})
                sent = 0
            if sent < self.batch:
                await pause(self.stopping, self.interval_s)

    async def run_once(self) -> int:
        """Claim and handle one batch of due notifications; returns how many."""
        due = await store.claim_due(self.pool, self.batch, LEASE)
        for n, item in enumerate(due):
            if self.stopping.is_set():
                # Stopping: the rest of the batch is handed back at once rather than
                # after the lease (one send each can take Telegram's timeouts).
                await store.release(self.pool, [d.id for d in due[n:]])
                break
            try:
                await self.deliver(item)
            except (asyncpg.PostgresError, OSError):
                raise  # the lease expires and the row is tried again
            except Exception as e:
                # A fault of ours (e.g. a message that does not render) is permanent:
                # give this one up, loudly, and go on with the others.
                log.exception("telegram notification failed", extra={"notification": item.id})
                await store.mark_failed(self.pool, item.id, f"internal: {type(e).__name__}")
        return len(due)

    async def deliver(self, item: store.Due) -> None:
        if item.blocked:
            self.metrics.notifications.labels("blocked").inc()
            await store.mark_failed(self.pool, item.id, "blocked")
            return
        row = await db.complaint_by_id(self.pool, item.complaint_id)
        if row is None:
            await store.mark_failed(self.pool, item.id, "unknown complaint")
            return
        locale = await self.pool.fetchval(
            "SELECT locale FROM intake.telegram_chats WHERE chat_id = $1", item.chat_id) or "id"
        may_rate, may_dispute = domain.feedback_state(self.catalog, row, datetime.now(UTC))
        text, markup = self.texts.notification(
            item.kind, item.params, locale=locale, code=row["tracking_code"],
            region=row["region"], complaint_id=str(item.complaint_id),
            may_rate=may_rate, may_dispute=may_dispute)
        if item.kind == "ticket.info_requested":
            # The next free text in this chat answers the agency's question. Set before
            # sending: the citizen may answer as soon as the message arrives.
            await store.set_answer_for(self.pool, item.chat_id, item.complaint_id)
        try:
            await self.bot.send_message(item.chat_id, text, reply_markup=markup)
        except Forbidden:
            log.info("telegram user blocked the bot; not retried",
                     extra={"notification": item.id})
            self.metrics.notifications.labels("blocked").inc()
            await store.mark_blocked(self.pool, item.chat_id)
            await store.mark_failed(self.pool, item.id, "blocked")
            return
        except RetryAfter as e:
            self.metrics.notifications.labels("retry").inc()
            wait = retry_after_seconds(e)
            await store.reschedule(self.pool, item.id,
                                   datetime.now(UTC) + timedelta(seconds=wait), f"429 {wait}s")
            return
        except BadRequest as e:
            log.warning("telegram refused a notification; given up",
                        extra={"notification": item.id, "error": e.message})
            self.metrics.notifications.labels("failed").inc()
            await store.mark_failed(self.pool, item.id, f"bad request: {e.message}")
            return
        except (NetworkError, TelegramError) as e:
            # NetworkError covers TimedOut and a Bot API that cannot be reached.
            self.metrics.notifications.labels("retry").inc()
            await store.reschedule(self.pool, item.id, datetime.now(UTC) + backoff(item.attempts),
                                   f"{type(e).__name__}: {e}")
            return
        self.metrics.notifications.labels("sent").inc()
        await store.mark_sent(self.pool, item.id)
