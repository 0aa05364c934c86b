"""What each audience may see of a complaint: the one place that decides it.

Two choices made at submission decide it, together with who is asking:

- ``visibility`` (``public`` | ``private``, default ``private``): whether the report
  itself is published. Only a public report appears on the public list
  (``/reports``, ``/api/v1/reports``) and in Open311 ``GET requests``, and only with
  the fields of ``PUBLIC_REPORT_FIELDS``.
- who holds what: the tracking code alone shows the status, the responsible agency
  and the deadlines (``STATUS_FIELDS``); the conversation (the agency's questions and
  answers, the citizen's own messages and information, the description) needs the
  follow-up secret, the receipt cookie of the browser that filed it, or the Telegram
  chat that filed it (``CONVERSATION_FIELDS``).

Every view is built from an allow-list of fields (what may be shown), never by
removing what must not be: a column added to ``intake.complaints`` later is hidden
until someone adds it here on purpose. The reporter's name, phone, e-mail and
Telegram chat id are in no list: they are in another table (or the bot's) and no
view reads them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from awasi.catalog import Catalog
from awasi.web.signed_links import attachment_link
from services.intake.statuses import overdue as _overdue

Access = Literal["status", "conversation"]

VISIBILITIES = ("public", "private")
DEFAULT_VISIBILITY = "private"

# The tracking code alone: status, agency (by its code), deadlines. The region is
# part of the code itself, and the deadlines are shown in its time zone.
STATUS_FIELDS = ("tracking_code", "access", "status", "visibility", "region", "agency",
                 "deadlines", "overdue", "paused", "can_give_feedback", "can_dispute")
# With the secret, the filing browser or the filing chat, in addition.
CONVERSATION_FIELDS = ("category", "title", "description", "privacy", "submitted_at",
                       "updated_at", "feedback", "timeline")
# A public report, on the public list and in Open311.
PUBLIC_REPORT_FIELDS = ("tracking_code", "region", "category", "title", "description",
                        "location", "agency", "status", "deadlines", "overdue",
                        "support_count", "submitted_at", "updated_at")
# A public report's own page: the list's fields and the photos sent with the report
# (signed links; not in the list, which stays one query per page).
PUBLIC_PAGE_FIELDS = (*PUBLIC_REPORT_FIELDS, "photos")
# The columns a public view is built from (an allow-list at the SQL too); breached,
# acknowledged_at and resolved_at are read to decide "overdue", never shown.
PUBLIC_COLUMNS = ("tracking_code, region, category, title, description, lat, lon, address,"
                  " agency, status, triage_by, acknowledge_by, resolve_by, dispute_until,"
                  " acknowledged_at, resolved_at, breached, support_count,"
                  " submitted_at, updated_at, visibility")
# The public timeline of a public report: which steps happened and when, never what
# was said. The citizen's own follow-ups (information added, feedback) and the text
# of the agency's questions stay in the conversation, which needs the secret.
PUBLIC_TIMELINE_KINDS = ("submitted", "complaint.routed", "complaint.needs_triage",
                         "ticket.acknowledged", "ticket.info_requested", "ticket.responded",
                         "ticket.resolved", "ticket.transferred", "ticket.reopened",
                         "deadline.breached", "case.escalated", "case.reopened", "withdrawn",
                         # That it ended as a duplicate (never of which report: the
                         # original may be private).
                         "ticket.duplicate_linked")


def iso(value: datetime | None) -> str | None:
    """UTC, ISO 8601 with a ``Z`` (None stays None)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _region(catalog: Catalog, code: str) -> dict[str, Any]:
    region = catalog.regions.get(code)
    return {"code": code, "name": region.name if region else code}


def _category(catalog: Catalog, code: str) -> dict[str, Any]:
    category = catalog.categories.get(code)
    return {"code": code, "name_id": category.name_id if category else code,
            "name_en": category.name_en if category else code}


def _agency(catalog: Catalog, code: str | None) -> dict[str, Any] | None:
    if not code:
        return None
    agency = catalog.agencies.get(code)
    return {"code": code, "name": agency.name if agency else code,
            "short_name": agency.short_name if agency else code}


def _deadlines(row: asyncpg.Record, dispute_until: datetime | None) -> dict[str, Any]:
    return {"triage_by": iso(row["triage_by"]), "acknowledge_by": iso(row["acknowledge_by"]),
            "resolve_by": iso(row["resolve_by"]), "dispute_until": iso(dispute_until)}


def status_view(catalog: Catalog, row: asyncpg.Record, events: Sequence[asyncpg.Record],
                *, access: Access, overdue: dict[str, bool], may_rate: bool,
                may_dispute: bool, dispute_until: datetime | None,
                paused: bool = False,
                attachment_link: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The status of one complaint as ``access`` allows: ``STATUS_FIELDS`` always,
    ``CONVERSATION_FIELDS`` only for ``conversation``. ``events`` (the timeline rows)
    are read only for the conversation. ``attachment_link`` makes the expiring
    download link of a file the agency sent (``download_url`` on its timeline entry):
    part of the conversation, so never on the status alone or a public page."""
    view: dict[str, Any] = {
        "tracking_code": row["tracking_code"],
        "access": access,
        "status": row["status"],
        "visibility": row["visibility"],
        "region": _region(catalog, row["region"]),
        "agency": _agency(catalog, row["agency"]),
        "deadlines": _deadlines(row, dispute_until),
        "overdue": overdue,
        # The agency's clock is stopped: it waits for the citizen's answer.
        "paused": paused,
        "can_give_feedback": may_rate,
        "can_dispute": may_dispute,
    }
    if access == "conversation":
        view.update({
            "category": _category(catalog, row["category"]),
            "title": row["title"],
            "description": row["description"],
            "privacy": row["privacy"],
            "submitted_at": iso(row["submitted_at"]),
            "updated_at": iso(row["updated_at"]),
            "feedback": ({"rating": row["rating"], "dispute": row["disputed"],
                          "given_at": iso(row["feedback_at"])} if row["feedback_at"] else None),
            "timeline": [_entry(e, attachment_link) for e in events],
        })
    return view


def attachment_links(secret_key: str, router_url: str) -> Callable[[str], str]:
    """Download links for the agency's files: signed for one attachment id, expiring
    (``awasi.web.signed_links.attachment_link``), served by the router, which holds
    the bytes (docs/SECURITY.md, "Staff attachments to the citizen")."""
    return functools.partial(attachment_link, secret_key, router_url)


def _entry(e: asyncpg.Record, attachment_link: Callable[[str], str] | None) -> dict[str, Any]:
    entry = {"at": iso(e["at"]), "kind": e["kind"], **dict(e["data"])}
    if e["kind"] == "ticket.attachment_added" and "attachment_id" in entry:
        entry["download_url"] = (attachment_link(entry["attachment_id"])
                                 if attachment_link is not None else None)
    return entry


def is_public(row: asyncpg.Record) -> bool:
    return row["visibility"] == "public"  # type: ignore[no-any-return]


def public_report(catalog: Catalog, row: asyncpg.Record,
                  now: datetime | None = None) -> dict[str, Any]:
    """A public report as anyone may see it (``PUBLIC_REPORT_FIELDS``): its text,
    category, place, agency, status and deadlines; never the reporter, the follow-up
    messages or the photos. Raises ``ValueError`` for a private report, so a caller
    that forgot to filter fails loudly instead of publishing it."""
    if not is_public(row):
        raise ValueError("a private report has no public view")
    has_place = row["lat"] is not None or row["address"] is not None
    view = {
        "tracking_code": row["tracking_code"],
        "region": _region(catalog, row["region"]),
        "category": _category(catalog, row["category"]),
        "title": row["title"],
        "description": row["description"],
        "location": ({"lat": row["lat"], "lon": row["lon"], "address": row["address"]}
                     if has_place else None),
        "agency": _agency(catalog, row["agency"]),
        "status": row["status"],
        "deadlines": _deadlines(row, row["dispute_until"]),
        "overdue": _overdue(row, now or datetime.now(UTC)),
        "support_count": row["support_count"],
        "submitted_at": iso(row["submitted_at"]),
        "updated_at": iso(row["updated_at"]),
    }
    return view


def public_page(catalog: Catalog, row: asyncpg.Record, photo_links: Sequence[str],
                now: datetime | None = None) -> dict[str, Any]:
    """A public report's own page (``PUBLIC_PAGE_FIELDS``): ``public_report`` and the
    links to the photos sent with the report (``photos.public_photo_ids``, never a
    follow-up's). Raises ``ValueError`` for a private report, as ``public_report``."""
    return {**public_report(catalog, row, now), "photos": list(photo_links)}


def public_timeline(events: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    """``(at, kind)`` of the timeline entries in ``PUBLIC_TIMELINE_KINDS``; no data."""
    return [{"at": iso(e["at"]), "kind": e["kind"]} for e in events
            if e["kind"] in PUBLIC_TIMELINE_KINDS]
