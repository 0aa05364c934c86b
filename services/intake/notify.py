"""The hook through which the citizen is told of a change of status.

The consumer calls ``on_status_change`` inside the transaction that applied the
router's or oversight's event, after the status and timeline were updated, so a
notification queued here commits (or rolls back) with the change it reports.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg

from awasi.db.errors import is_transient
from awasi.events import payloads as p
from awasi.events.envelope import Envelope
from services.intake.mail import queue as mail_queue
from services.intake.telegram import store

log = logging.getLogger(__name__)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def citizen_news(envelope: Envelope) -> dict[str, Any] | None:
    """What of this event the citizen is told (the notification's parameters), or
    None for events that are not news to them (warnings to staff, unpublished
    findings, a transfer's reason). Nothing here is personal data."""
    payload = envelope.typed_payload()
    match payload:
        case p.ComplaintRouted():
            return {"agency": payload.agency,
                    "acknowledge_by": _iso(payload.deadlines.acknowledge_by),
                    "resolve_by": _iso(payload.deadlines.resolve_by)}
        case p.TicketAcknowledged():
            return {"agency": payload.agency, "resolve_by": _iso(payload.deadlines.resolve_by)}
        case p.TicketInfoRequested():
            return {"agency": payload.agency, "question": payload.question}
        case p.TicketResponded():
            return {"agency": payload.agency, "message": payload.message}
        case p.TicketAttachmentAdded():
            # That a file is there and its name: the messages link to the status page,
            # never to the file (a forwarded message must not open it).
            return {"agency": payload.agency, "file_name": payload.file_name}
        case p.TicketResolved():
            return {"agency": payload.agency, "note": payload.note,
                    "dispute_until": _iso(payload.deadlines.dispute_until)}
        case p.TicketTransferred():
            return {"agency": payload.agency}
        case p.TicketReopened():
            return {"agency": payload.agency}
        case p.CaseReopened():
            return {}
        case p.TicketClockResumed():
            # After the pause the citizen sees the moved deadlines.
            return {"agency": payload.agency,
                    "acknowledge_by": _iso(payload.deadlines.acknowledge_by),
                    "resolve_by": _iso(payload.deadlines.resolve_by)}
        case p.CaseClosed():
            return {"reason": payload.reason, "note": payload.note}
        case p.TicketMovedRegion():
            return {"region": payload.region, "note": payload.reason,
                    "triage_by": _iso(payload.deadlines.triage_by)}
        case p.CaseInfoReminder():
            return {"archive_at": _iso(payload.archive_at)}
        case p.CaseArchived():
            return {"revive_until": _iso(payload.revive_until)}
        case p.TicketReturnedToTriage():
            return {"triage_by": _iso(payload.deadlines.triage_by)}
        case p.TicketRejected():
            return {"reason_code": payload.reason_code, "note": payload.reason,
                    "duplicate_of": payload.duplicate_of}
        case p.TicketDuplicateLinked():
            # ``on_status_change`` adds whether the original is public.
            return {"agency": payload.agency, "original": payload.original_tracking_code}
        case p.DeadlineBreached():
            return {"deadline": payload.kind, "agency": payload.agency,
                    "due_at": _iso(payload.due_at)}
        case p.CaseEscalated():
            return {"level": payload.level, "deadline": payload.kind, "agency": payload.agency}
        case p.FindingRecorded() if payload.published:
            return {"outcome": payload.outcome, "recommendation": payload.recommendation}
    return None


async def is_public(conn: asyncpg.Connection, complaint_id: str) -> bool:
    """Whether intake's complaint ``complaint_id`` is a public report (False for an
    unknown id: then nothing of it is shown)."""
    try:
        cid = uuid.UUID(complaint_id)
    except ValueError:
        return False
    return bool(await conn.fetchval(
        "SELECT visibility = 'public' FROM intake.complaints WHERE id = $1", cid))


async def on_status_change(conn: asyncpg.Connection, complaint_id: str, envelope: Envelope,
                           *, mail: bool = False) -> None:
    """Queue the news on every channel the citizen came by: a Telegram notification
    for each chat that reported this complaint, and (``mail``: e-mail is configured)
    one e-mail when the reporter left an address.

    Only INSERTs into ``intake.telegram_notifications`` and
    ``intake.email_notifications`` (the senders deliver them later), so Telegram or
    the mail server being slow or down never holds up or fails the consumer, and a
    rolled-back event queues nothing. Unique on the event (and chat): a replay queues
    nothing twice."""
    news = citizen_news(envelope)
    if news is None:
        return
    if envelope.type == "case.closed":
        # Every citizen whose complaint closes is invited to the satisfaction survey
        # of the agency that handled it (docs/EVALUATION.md).
        agency = await conn.fetchval("SELECT agency FROM intake.complaints WHERE id = $1",
                                     uuid.UUID(complaint_id))
        if agency:
            news = {**news, "agency": agency, "survey_agency": agency}
    if isinstance(envelope.typed_payload(), p.TicketDuplicateLinked):
        # The citizen of a duplicate follows the original: its public page when its
        # citizen made it public, else only its tracking code (status and deadlines).
        news = {**news, "original_public": await is_public(
            conn, envelope.payload["original_complaint_id"])}
    try:
        # A savepoint: a fault of the notification's own SQL must not cost the citizen
        # the status change itself (the event would be dead-lettered); a transient
        # error propagates so the consumer retries the whole event.
        async with conn.transaction():
            for chat_id in await store.chats_of_complaint(conn, complaint_id):
                await store.queue_notification(conn, envelope.event_id, chat_id,
                                               complaint_id, envelope.type, news)
            if mail:
                await mail_queue.queue(conn, envelope.event_id, complaint_id, envelope.type,
                                       news)
    except asyncpg.PostgresError as e:
        if is_transient(e):
            raise
        log.exception("notification not queued", extra={"type": envelope.type})
