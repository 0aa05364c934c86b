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

from awasi import lifecycle
from awasi.events import payloads as p
from awasi.events.envelope import Envelope
from services.intake import db, notify

log = logging.getLogger(__name__)

TOPIC_TYPES = {
    "complaint.routed", "complaint.needs_triage", "ticket.acknowledged",
    "ticket.info_requested", "ticket.responded", "ticket.resolved", "ticket.transferred",
    "ticket.reopened", "ticket.clock_resumed", "ticket.rejected",
    "ticket.returned_to_triage", "ticket.moved_region", "ticket.duplicate_linked",
    "ticket.attachment_added",
    "case.archived", "case.info_reminder",
    "deadline.warning",
    "deadline.breached", "case.escalated", "finding.recorded", "case.reopened", "case.closed",
}


def accepts(envelope: Envelope) -> bool:
    return envelope.type in TOPIC_TYPES


def _deadlines(d: p.Deadlines) -> dict[str, Any]:
    return {"triage_by": d.triage_by, "acknowledge_by": d.acknowledge_by,
            "resolve_by": d.resolve_by}


def state_of(row: asyncpg.Record) -> lifecycle.State:
    """The complaint's lifecycle state as intake holds it."""
    return lifecycle.State(status=row["status"], seq=row["seq"],
                           status_seq=row["status_seq"], paused_from=row["paused_from"])


def state_columns(state: lifecycle.State) -> dict[str, Any]:
    return {"status": state.status, "seq": state.seq, "status_seq": state.status_seq,
            "paused_from": state.paused_from}


def _facts(payload: p.Payload, row: asyncpg.Record, at: Any) -> tuple[
        dict[str, Any], dict[str, Any] | None]:
    """(columns to set, timeline entry or None) for an event the lifecycle applies."""
    match payload:
        case p.ComplaintRouted():
            return ({"agency": payload.agency, **_deadlines(payload.deadlines)},
                    {"agency": payload.agency})
        case p.ComplaintNeedsTriage():
            return {"triage_by": payload.deadlines.triage_by}, {}
        case p.TicketAcknowledged():
            return ({"agency": payload.agency, "acknowledged_at": at,
                     **{k: v for k, v in _deadlines(payload.deadlines).items() if v}},
                    {"agency": payload.agency})
        case p.TicketInfoRequested():
            return {}, {"agency": payload.agency, "question": payload.question}
        case p.TicketClockResumed():
            # The router moved the deadlines by the pause: the citizen sees those.
            return ({k: v for k, v in _deadlines(payload.deadlines).items() if v},
                    {"agency": payload.agency,
                     "resolve_by": _iso(payload.deadlines.resolve_by)})
        case p.TicketResponded():
            return {}, {"agency": payload.agency, "message": payload.message}
        case p.TicketAttachmentAdded():
            # What the status page needs for the signed link the router serves; the
            # bytes stay with the router.
            return {}, {"agency": payload.agency, "attachment_id": payload.attachment_id,
                        "file_kind": payload.kind, "content_type": payload.content_type,
                        "size": payload.size, "file_name": payload.file_name}
        case p.TicketResolved():
            # A new resolution: a new rating and a new dispute window.
            return ({"resolved_at": at, "dispute_until": payload.deadlines.dispute_until,
                     "rating": None, "feedback_comment": None, "disputed": False,
                     "feedback_at": None},
                    {"agency": payload.agency, "note": payload.note,
                     "dispute_until": _iso(payload.deadlines.dispute_until)})
        case p.TicketTransferred():
            # The reason is the agencies' business; the citizen sees where it went.
            return ({"agency": payload.agency, "acknowledged_at": None, "breached": [],
                     **_deadlines(payload.deadlines)},
                    {"from_agency": payload.from_agency, "agency": payload.agency})
        case p.TicketReturnedToTriage():
            # Back to the region's triage officer: no agency until they route it.
            return ({"agency": None, "acknowledged_at": None, "breached": [],
                     "acknowledge_by": None, "resolve_by": None,
                     "triage_by": payload.deadlines.triage_by},
                    {"from_agency": payload.from_agency})
        case p.TicketReopened():
            return ({"agency": payload.agency, "resolved_at": None, "dispute_until": None,
                     "acknowledged_at": None, "breached": [],
                     **_deadlines(payload.deadlines)},
                    {"agency": payload.agency})
        case p.DeadlineWarning():
            return {}, None  # the staff's reminder, not news for the citizen
        case p.DeadlineBreached():
            return ({"breached": sorted({*(row["breached"] or ()), payload.kind})},
                    {"deadline": payload.kind, "agency": payload.agency,
                     "due_at": _iso(payload.due_at)})
        case p.CaseEscalated():
            return {}, {"level": payload.level, "deadline": payload.kind}
        case p.FindingRecorded():
            if not payload.published:
                return {}, None
            return {}, {"outcome": payload.outcome,
                        "maladministration_type": payload.maladministration_type,
                        "recommendation": payload.recommendation}
        case p.CaseReopened():
            return {"resolved_at": None, "dispute_until": None}, {}
        case p.CaseClosed():
            return {}, {"reason": payload.reason, "note": payload.note}
        case p.TicketMovedRegion():
            return ({"region": payload.region, "triage_by": payload.deadlines.triage_by},
                    {"from_region": payload.from_region, "region": payload.region,
                     "note": payload.reason})
        case p.CaseInfoReminder():
            return {}, {"archive_at": _iso(payload.archive_at)}
        case p.CaseArchived():
            return ({"revive_until": payload.revive_until},
                    {"revive_until": _iso(payload.revive_until)})
        case p.TicketRejected():
            return {}, {"reason_code": payload.reason_code, "note": payload.reason,
                        "duplicate_of": payload.duplicate_of}
        case p.TicketDuplicateLinked():
            # Where to follow: the original's tracking code (``handle`` adds whether
            # it is public), never its content.
            return {}, {"original": payload.original_tracking_code, "agency": payload.agency}
    return {}, None


async def handle(conn: asyncpg.Connection, envelope: Envelope, *, mail: bool = False) -> None:
    """Apply one event to the complaint's status (through ``awasi.lifecycle``) and
    citizen-visible timeline, then call ``notify.on_status_change`` (``mail``: e-mail
    is configured, so e-mails are queued too; the app binds it from the settings). An event the
    lifecycle finds stale or impossible now (a late ``complaint.routed`` after a
    withdrawal) is recorded on the timeline as ignored and changes nothing else.
    Events for complaints intake does not know are logged and skipped."""
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
    if not isinstance(payload, _KNOWN):
        return
    at = envelope.occurred_at
    step = lifecycle.apply(state_of(row), lifecycle.event_name(envelope.type, envelope.payload),
                           envelope.seq)
    changes: dict[str, Any] = {"seq": step.state.seq}
    facts, entry = _facts(payload, row, at)
    if isinstance(payload, p.TicketDuplicateLinked) and entry is not None:
        entry["original_public"] = await notify.is_public(conn, payload.original_complaint_id)
    if step.applies:
        changes.update(facts)
        changes.update(state_columns(step.state))
    elif entry is not None:
        # Kept for the record (the citizen's history is complete), marked ignored.
        entry = {**entry, "ignored": step.outcome}
    updated = max(at, row["updated_at"])
    await db.update_complaint(conn, complaint_id, updated, **changes)
    if entry is not None:
        await db.add_timeline(conn, [(complaint_id, at, envelope.type,
                                      {k: v for k, v in entry.items() if v is not None})])
    if step.applies:
        await notify.on_status_change(conn, str(complaint_id), envelope, mail=mail)


_KNOWN = (p.ComplaintRouted, p.ComplaintNeedsTriage, p.TicketAcknowledged,
          p.TicketInfoRequested, p.TicketClockResumed, p.TicketResponded, p.TicketResolved,
          p.TicketTransferred, p.TicketReopened, p.DeadlineWarning, p.DeadlineBreached,
          p.CaseEscalated, p.FindingRecorded, p.CaseReopened, p.CaseClosed, p.TicketRejected,
          p.TicketReturnedToTriage, p.CaseInfoReminder, p.CaseArchived, p.TicketMovedRegion,
          p.TicketDuplicateLinked, p.TicketAttachmentAdded)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
