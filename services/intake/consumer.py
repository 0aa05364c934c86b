"""Keeps the citizen's view current from the router's and oversight's events.

Runs inside ``IdempotentConsumer``'s transaction (the dedupe record and this effect
commit together). Only what the citizen may see is kept: the agency's code, the
deadlines, the agency's question and response, the resolution note, escalations and
published findings; never staff names or internal notes (the payloads carry none,
and a transfer's reason and unpublished findings are left out on purpose).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg

from awasi.events import payloads as p
from awasi.events.envelope import Envelope
from services.intake import db, notify

log = logging.getLogger(__name__)

TOPIC_TYPES = {
    "complaint.routed", "complaint.needs_triage", "ticket.acknowledged",
    "ticket.info_requested", "ticket.responded", "ticket.resolved", "ticket.transferred",
    "ticket.reopened", "deadline.warning", "deadline.breached", "case.escalated",
    "finding.recorded", "case.reopened",
}


def accepts(envelope: Envelope) -> bool:
    return envelope.type in TOPIC_TYPES


def _deadlines(d: p.Deadlines) -> dict[str, Any]:
    return {"triage_by": d.triage_by, "acknowledge_by": d.acknowledge_by,
            "resolve_by": d.resolve_by}


async def handle(conn: asyncpg.Connection, envelope: Envelope, *, mail: bool = False) -> None:
    """Apply one event to the complaint's status and citizen-visible timeline, then
    call ``notify.on_status_change`` (``mail``: e-mail is configured, so e-mails are
    queued too; the app binds it from the settings). Events for complaints intake does not know are
    logged and skipped (nothing to show to anyone)."""
    try:
        complaint_id = uuid.UUID(envelope.complaint_id)
    except ValueError:
        log.warning("event for a complaint id that is not ours", extra={"type": envelope.type})
        return
    row = await db.complaint_by_id(conn, complaint_id, for_update=True)
    if row is None:
        log.warning("event for an unknown complaint", extra={"type": envelope.type})
        return
    payload = envelope.typed_payload()
    at = envelope.occurred_at
    changes: dict[str, Any] = {}
    entry: dict[str, Any] | None = {}
    status = row["status"]
    terminal = status in ("withdrawn", "closed")

    match payload:
        case p.ComplaintRouted():
            changes = {"agency": payload.agency, **_deadlines(payload.deadlines)}
            if status in ("submitted", "triage"):
                changes["status"] = "routed"
            entry = {"agency": payload.agency}
        case p.ComplaintNeedsTriage():
            changes = {"triage_by": payload.deadlines.triage_by}
            if status == "submitted":
                changes["status"] = "triage"
        case p.TicketAcknowledged():
            changes = {"agency": payload.agency, "acknowledged_at": at,
                       **{k: v for k, v in _deadlines(payload.deadlines).items() if v}}
            if status in ("submitted", "triage", "routed", "reopened"):
                changes["status"] = "acknowledged"
            entry = {"agency": payload.agency}
        case p.TicketInfoRequested():
            changes = {"status": "info_requested"}
            entry = {"agency": payload.agency, "question": payload.question}
        case p.TicketResponded():
            changes = {"status": "responded"} if status != "info_requested" else {}
            entry = {"agency": payload.agency, "message": payload.message}
        case p.TicketResolved():
            changes = {"status": "resolved", "resolved_at": at,
                       "dispute_until": payload.deadlines.dispute_until,
                       "rating": None, "feedback_comment": None, "disputed": False,
                       "feedback_at": None}
            entry = {"agency": payload.agency, "note": payload.note,
                     "dispute_until": _iso(payload.deadlines.dispute_until)}
        case p.TicketTransferred():
            # The reason is the agencies' business; the citizen sees where it went.
            changes = {"agency": payload.agency, "acknowledged_at": None,
                       "breached": [], **_deadlines(payload.deadlines)}
            if status not in ("info_requested",):
                changes["status"] = "routed"
            entry = {"from_agency": payload.from_agency, "agency": payload.agency}
        case p.TicketReopened():
            changes = {"status": "reopened", "agency": payload.agency, "resolved_at": None,
                       "dispute_until": None, "breached": [], **_deadlines(payload.deadlines)}
            entry = {"agency": payload.agency}
        case p.DeadlineWarning():
            entry = None  # the staff's reminder, not news for the citizen
        case p.DeadlineBreached():
            changes = {"breached": sorted({*(row["breached"] or ()), payload.kind})}
            entry = {"deadline": payload.kind, "agency": payload.agency,
                     "due_at": _iso(payload.due_at)}
        case p.CaseEscalated():
            entry = {"level": payload.level, "deadline": payload.kind}
        case p.FindingRecorded():
            if not payload.published:
                entry = None
            else:
                entry = {"outcome": payload.outcome,
                         "maladministration_type": payload.maladministration_type,
                         "recommendation": payload.recommendation}
        case p.CaseReopened():
            changes = {"status": "reopened", "resolved_at": None, "dispute_until": None}
            entry = {}
        case _:
            return
    if terminal:
        # A withdrawn or closed complaint keeps its status; the history still records.
        changes.pop("status", None)
    updated = max(at, row["updated_at"])
    await db.update_complaint(conn, complaint_id, updated, **changes)
    if entry is not None:
        await db.add_timeline(conn, [(complaint_id, at, envelope.type,
                                      {k: v for k, v in entry.items() if v is not None})])
    await notify.on_status_change(conn, str(complaint_id), envelope, mail=mail)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
