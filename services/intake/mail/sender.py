"""Delivers the queued e-mails (``intake.email_notifications``) through the SMTP
server of ``AWASI_SMTP_URL``.

A background task claims due rows (``queue.claim_due``: FOR UPDATE SKIP LOCKED and a
lease), opens one SMTP session per batch, sends each message and marks it sent. What
the server answers decides what happens next:

- accepted: marked sent (never sent again, whatever restarts follow);
- a permanent refusal (5xx: no such mailbox, refused content): given up and logged;
- anything else (the server unreachable or dropping the connection, a timeout, 4xx,
  a failed login): tried again with exponential backoff, up to ten minutes apart,
  for ``GIVE_UP_AFTER``; only then given up. An outage of the mail server (or of
  intake) therefore loses nothing.

At least once, and identifiable: each message's Message-ID is derived from its row
(``<awasi-mail-ID@domain>``), so the one duplicate a crash can cause (after the server
accepted a message, before ``mark_sent`` committed; the lease then hands the row out
again) carries the same Message-ID as the first, and mail clients and servers that
deduplicate on it show one. A stop (``stopping`` set, as intake's shutdown does)
lets the batch in hand finish and be recorded, within the shutdown timeout, so a
restart neither sends a message again nor waits for a lease to expire; only a crash
or a batch that outlasts the timeout leaves that edge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib
import asyncpg
from prometheus_client import CollectorRegistry, Counter

from awasi import mail
from awasi.catalog import Catalog
from awasi.web.app import pause
from services.intake.mail import queue
from services.intake.mail.texts import MailTexts

log = logging.getLogger(__name__)

# Longer than a batch can take (BATCH messages, each bounded by the SMTP timeout), so
# a row is never handed to a second process while the first still sends it.
LEASE = timedelta(minutes=10)
BATCH = 10
GIVE_UP_AFTER = timedelta(days=3)
MAX_BACKOFF_S = 600.0
PURGE_EVERY_S = 3600.0


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... up to ten minutes."""
    return timedelta(seconds=min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1)))


class MailSender:
    def __init__(self, pool: asyncpg.Pool, catalog: Catalog, smtp: mail.SmtpConfig, *,
                 mail_from: str, intake_url: str, interval_s: float = 0.5,
                 registry: CollectorRegistry | None = None) -> None:
        self.pool = pool
        self.smtp = smtp
        self.mail_from = mail_from
        self.domain = mail.sender_domain(mail_from)
        self.intake_url = intake_url.rstrip("/")
        self.texts = MailTexts(catalog, self.intake_url)
        self.interval_s = interval_s
        self.outcomes = Counter("awasi_intake_emails_total", "E-mails to citizens by outcome",
                                ["outcome"], registry=registry)
        # Set to stop after the batch in hand (awasi.web.app.background).
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        """Deliver until ``stopping`` is set (or cancelled); database trouble is logged
        and retried."""
        purged_at = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() - purged_at > PURGE_EVERY_S:
                    await queue.purge(self.pool)
                    purged_at = time.monotonic()
                handled = await self.run_once()
            except (asyncpg.PostgresError, OSError) as e:
                log.warning("mail sender: database unavailable", extra={"error": repr(e)})
                handled = 0
            if handled < BATCH:
                await pause(self.stopping, self.interval_s)

    async def run_once(self) -> int:
        """Claim one batch of due e-mails and handle it; returns how many."""
        due = await queue.claim_due(self.pool, BATCH, LEASE)
        if not due:
            return 0
        ready: list[tuple[queue.Due, EmailMessage]] = []
        for item in due:
            message = await self.build(item)
            if message is not None:
                ready.append((item, message))
        if ready:
            await self.send(ready)
        return len(due)

    def message_id(self, item: queue.Due) -> str:
        return f"<awasi-mail-{item.id}@{self.domain}>"

    async def build(self, item: queue.Due) -> EmailMessage | None:
        """The message for ``item``, or None when it was given up (no address kept any
        more, or a message that does not render: a fault of ours, logged)."""
        to = await queue.recipient(self.pool, item.complaint_id)
        if to is None:
            await queue.mark_failed(self.pool, item.id, "no address")
            return None
        try:
            code = to["tracking_code"]
            # The page in the language the e-mail is in (Indonesian is the page's default).
            lang = "?lang=en" if to["locale"] == "en" else ""
            text = self.texts.compose(item.kind, item.params, locale=to["locale"], code=code,
                                      region=to["region"],
                                      status_url=f"{self.intake_url}/status/{code}{lang}")
        except Exception as e:  # a message that does not render must not stop the queue
            log.exception("e-mail does not render; given up", extra={"notification": item.id})
            self.outcomes.labels("failed").inc()
            await queue.mark_failed(self.pool, item.id, f"internal: {type(e).__name__}")
            return None
        message = EmailMessage()
        message["From"] = self.mail_from
        message["To"] = to["email"]
        message["Subject"] = text.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = self.message_id(item)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
        message.set_content(text.body)
        message.add_alternative(text.html, subtype="html")
        message["Content-Language"] = to["locale"]  # after set_content: it resets Content-*
        return message

    async def send(self, ready: list[tuple[queue.Due, EmailMessage]]) -> None:
        """One SMTP session for the batch; each message's outcome recorded."""
        try:
            async with self.smtp.client() as smtp:
                results = await mail.send_all(smtp, [m for _, m in ready])
        except (aiosmtplib.SMTPException, OSError) as e:
            # Connecting, TLS or login failed: every message waits for the next try.
            results = [e] * len(ready)
        for (item, _), error in zip(ready, results, strict=True):
            await self.record(item, error)

    async def record(self, item: queue.Due, error: BaseException | None) -> None:
        if error is None:
            self.outcomes.labels("sent").inc()
            await queue.mark_sent(self.pool, item.id)
            return
        reason = f"{type(error).__name__}: {error}"
        if mail.is_permanent(error):
            log.warning("mail server refused an e-mail; given up",
                        extra={"notification": item.id, "error": reason})
            self.outcomes.labels("failed").inc()
            await queue.mark_failed(self.pool, item.id, reason)
        elif datetime.now(UTC) - item.created_at > GIVE_UP_AFTER:
            log.warning("e-mail undeliverable for too long; given up",
                        extra={"notification": item.id, "error": reason})
            self.outcomes.labels("expired").inc()
            await queue.mark_failed(self.pool, item.id, f"expired: {reason}")
        else:
            self.outcomes.labels("retry").inc()
            await queue.reschedule(self.pool, item.id,
                                   datetime.now(UTC) + backoff(item.attempts), reason)
