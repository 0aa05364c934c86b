"""Intake's domain: submitting a complaint, and what the citizen can do with it later
(add information, rate or dispute, withdraw), plus the public view of its status.

Every state change writes its event into the outbox in the same transaction
(``add_to_outbox(conn, "intake", topics.INTAKE, env)``). No event carries the
reporter's contact: events carry ``reporter_ref``, a random pseudonym.

Follow-up secret: every complaint, whatever its privacy mode, gets one secret; it is
shown once (web receipt, API answer) and only its sha256 is stored. It proves
ownership for adding information, rating, disputing and withdrawing. One rule for
all modes is simpler to explain and safer than checking a phone number or e-mail
address, which a named reporter's neighbour may know too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from awasi import i18n, lifecycle, tracing
from awasi.catalog import Catalog
from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import (
    ComplaintFeedbackGiven,
    ComplaintInfoAdded,
    ComplaintSubmitted,
    ComplaintWithdrawn,
    Location,
    Privacy,
    Visibility,
)
from awasi.ids import new_id
from awasi.jsonlog import event_context
from awasi.settings import Settings
from services.intake import db, statuses, visibility
from services.intake.consumer import state_columns, state_of
from services.intake.errors import (
    IdempotencyKeyReused,
    NotAllowedNow,
    UnknownComplaint,
    WrongSecret,
    field_error,
)
from services.intake.photos import Photo, check_count

log = logging.getLogger(__name__)

SCHEMA = "intake"
PRODUCER = "intake"
DESCRIPTION_MIN = 10
DESCRIPTION_MAX = 4000
Channel = Literal["web", "api", "open311", "telegram"]

# Statuses the citizen sees and the overdue rule: the lifecycle's, through ``statuses``.
OPEN_STATUSES = statuses.OPEN_STATUSES
TERMINAL_STATUSES = statuses.TERMINAL_STATUSES
clocks = statuses.clocks
overdue = statuses.overdue

# --- tracking codes and secrets ------------------------------------------------------

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE_MAP = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _random_base32(n: int) -> str:
    # One read of the OS random source, 5 bits a character (32 symbols: no bias).
    value = int.from_bytes(secrets.token_bytes((5 * n + 7) // 8), "big")
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(n))


def new_tracking_code(region: str) -> str:
    """``<REGION>-XXXX-XXXX``: 40 random bits in Crockford base32 (no I, L, O, U), so it
    reads well over the phone and cannot be guessed or enumerated."""
    body = _random_base32(8)
    return f"{region}-{body[:4]}-{body[4:]}"


def normalize_code(raw: str) -> str:
    """Accept what people type: any case, spaces or missing hyphens, O for 0, I/L for 1."""
    text = re.sub(r"[\s\-_.]", "", raw.upper())
    m = re.fullmatch(r"([A-Z][A-Z0-9]{1,9}?)([0-9A-Z]{8})", text)
    if not m:
        return raw.strip().upper()
    body = m[2].translate(_DECODE_MAP)
    return f"{m[1]}-{body[:4]}-{body[4:]}"


def new_secret() -> str:
    """80 random bits as four groups of four Crockford characters."""
    s = _random_base32(16)
    return "-".join(s[i:i + 4] for i in range(0, 16, 4))


def _derived_secret(settings: Settings, complaint_id: uuid.UUID, idempotency_key: str) -> str:
    # A retried submission must answer the same secret, yet the secret is never stored:
    # derive it from the server key, the complaint and the client's Idempotency-Key.
    digest = hmac.new(settings.secret_key.encode(),
                      f"idem|{complaint_id}|{idempotency_key}".encode(), "sha256").digest()
    n = int.from_bytes(digest[:10], "big")
    s = "".join(CROCKFORD[(n >> (5 * i)) & 31] for i in range(16))
    return "-".join(s[i:i + 4] for i in range(0, 16, 4))


def normalize_secret(raw: str) -> str:
    text = re.sub(r"[\s\-_.]", "", raw.upper()).translate(_DECODE_MAP)
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(normalize_secret(secret).encode()).digest()


def check_secret(row: asyncpg.Record, secret: str | None) -> None:
    """Raise ``WrongSecret`` unless ``secret`` is the complaint's (constant time)."""
    if not secret or not hmac.compare_digest(hash_secret(secret), bytes(row["secret_hash"])):
        raise WrongSecret("The follow-up secret is wrong for this tracking code")


# --- input models (JSON API; the web form and Open311 build the same command) ----------

def _blank_to_none(v: Any) -> Any:
    return None if isinstance(v, str) and not v.strip() else v


class ReporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9][0-9 ()\-]{5,30}$")
    email: str | None = Field(default=None, max_length=254,
                              pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    _blank = field_validator("name", "phone", "email", mode="before")(_blank_to_none)

    def is_empty(self) -> bool:
        return not (self.name or self.phone or self.email)


class PhotoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content_type: str = Field(max_length=100, description="Claimed type; the bytes decide.")
    data: str = Field(description="The image, base64-encoded")


class ComplaintIn(BaseModel):
    """``POST /api/v1/complaints``. ``privacy`` defaults to ``confidential``,
    ``visibility`` to ``private`` (the safest choices)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    region: str = Field(min_length=1, max_length=10)
    category: str = Field(min_length=1, max_length=40)
    title: str | None = Field(default=None, max_length=200)
    description: str = Field(min_length=DESCRIPTION_MIN, max_length=DESCRIPTION_MAX)
    location: Location | None = None
    reporter: ReporterIn | None = None
    privacy: Privacy = "confidential"
    visibility: Visibility = Field(
        default="private",
        description="public: the text, category, location, agency, status and deadlines "
                    "appear on the public list (never the reporter); private: they do not.")
    photos: list[PhotoIn] = Field(default_factory=list, max_length=3)

    _blank = field_validator("title", mode="before")(_blank_to_none)


class Receipt(BaseModel):
    """What a citizen gets back: keep the tracking code and the secret."""

    complaint_id: str
    tracking_code: str
    status: str = "submitted"
    privacy: Privacy
    visibility: Visibility = "private"
    secret: str = Field(description="Follow-up secret: needed to see the conversation "
                                    "(header X-Awasi-Secret), add information, rate, dispute "
                                    "or withdraw. Shown once; only its hash is kept.")
    status_url: str
    page_url: str
    submitted_at: datetime


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    secret: str = Field(min_length=1, max_length=64)
    rating: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)
    dispute: bool = False

    @model_validator(mode="after")
    def _something(self) -> FeedbackIn:
        if self.rating is None and not self.dispute:
            raise ValueError("give a rating (1-5) or dispute the resolution")
        return self


class InfoIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    secret: str = Field(min_length=1, max_length=64)
    message: str = Field(min_length=1, max_length=DESCRIPTION_MAX)
    photos: list[PhotoIn] = Field(default_factory=list, max_length=3)


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    secret: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=1000)


@dataclass(frozen=True, slots=True)
class SubmitCommand:
    """A complaint from any channel (web, api, open311, telegram)."""

    region: str
    category: str
    description: str
    privacy: Privacy = "confidential"
    visibility: Visibility = "private"
    channel: Channel = "api"
    title: str | None = None
    location: Location | None = None
    reporter: ReporterIn | None = None
    photos: Sequence[Photo] = ()
    media_url: str | None = None
    idempotency_key: str | None = None
    request_hash: bytes | None = None
    # The language the citizen used (``awasi.i18n.SUPPORTED``): what we write to them
    # later (e-mail) is in it.
    locale: str = "id"


# --- submitting ------------------------------------------------------------------------

def validate_command(catalog: Catalog, cmd: SubmitCommand) -> SubmitCommand:
    """Check codes against the catalog and the privacy rules; raise a 422 naming the
    field. Returns the command to store (an anonymous report's contact is dropped:
    anonymous means nothing is kept, whatever was typed)."""
    if cmd.region not in catalog.regions:
        raise field_error("region", f"unknown region {cmd.region!r}", "unknown_code")
    if cmd.category not in {c.code for c in catalog.categories_for(cmd.region)}:
        raise field_error("category", f"unknown category {cmd.category!r} in region "
                          f"{cmd.region}", "unknown_code")
    check_location(catalog, cmd.region, cmd.location)
    description = cmd.description.strip()
    if not DESCRIPTION_MIN <= len(description) <= DESCRIPTION_MAX:
        raise field_error("description", f"write between {DESCRIPTION_MIN} and "
                          f"{DESCRIPTION_MAX} characters", "string_length")
    check_count(len(cmd.photos))
    reporter = cmd.reporter
    if cmd.privacy == "anonymous":
        reporter = None
    elif cmd.privacy == "named" and (reporter is None or not reporter.name):
        raise field_error("reporter.name", "a named report needs the reporter's name", "missing")
    if reporter is not None and reporter.is_empty():
        reporter = None
    return SubmitCommand(
        region=cmd.region, category=cmd.category, description=description,
        privacy=cmd.privacy, visibility=cmd.visibility, channel=cmd.channel, title=cmd.title,
        location=cmd.location,
        reporter=reporter, photos=tuple(cmd.photos), media_url=cmd.media_url,
        idempotency_key=cmd.idempotency_key,
        request_hash=cmd.request_hash, locale=i18n.normalize(cmd.locale) or i18n.DEFAULT,
    )


def check_location(catalog: Catalog, region: str, location: Location | None) -> None:
    """A pin needs both coordinates and must lie in the region's bounding box (from
    the catalog; a region without one takes any point). Raises a 422 naming
    ``location``: the web form, the API, Open311's lat/long and the bot's shared
    location all fill this one field and get this one check."""
    if location is None or (location.lat is None and location.lon is None):
        return
    if location.lat is None or location.lon is None:
        raise field_error("location", "give both lat and lon, or neither", "incomplete_point")
    box = catalog.regions[region].bbox
    if box is not None and not box.contains(location.lat, location.lon):
        raise field_error("location", f"the point ({location.lat}, {location.lon}) is outside "
                          f"{catalog.regions[region].name}", "outside_region")


@dataclass
class Prepared:
    """A validated submission with its ids, rows and event, ready to store."""

    cmd: SubmitCommand
    complaint_id: uuid.UUID
    tracking_code: str
    secret: str
    reporter_ref: str
    now: datetime
    photo_ids: list[uuid.UUID] = field(default_factory=list)
    # The trace of the request that prepared it: a group commit stores submissions of
    # several requests in one transaction, each outbox row with its own trace.
    trace_context: dict[str, str] | None = field(default_factory=tracing.carrier)

    def complaint_row(self) -> tuple[Any, ...]:
        c, loc = self.cmd, self.cmd.location
        return (self.complaint_id, self.tracking_code, c.region, c.category, c.title,
                c.description, loc.lat if loc else None, loc.lon if loc else None,
                loc.address if loc else None, c.privacy, c.channel, self.reporter_ref,
                hash_secret(self.secret), "submitted", self.now, self.now, c.media_url,
                c.visibility)

    def envelope(self) -> Envelope:
        c = self.cmd
        return Envelope.build(ComplaintSubmitted(
            tracking_code=self.tracking_code, region=c.region, category=c.category,
            title=c.title, description=c.description, location=c.location,
            privacy=c.privacy, reporter_ref=self.reporter_ref, channel=c.channel,
            photo_ids=tuple(str(p) for p in self.photo_ids), submitted_at=self.now,
            visibility=c.visibility,
        ), complaint_id=str(self.complaint_id), producer=PRODUCER, occurred_at=self.now,
            seq=1)

    def receipt(self) -> Receipt:
        return Receipt(
            complaint_id=str(self.complaint_id), tracking_code=self.tracking_code,
            privacy=self.cmd.privacy, visibility=self.cmd.visibility, secret=self.secret,
            status_url=f"/api/v1/complaints/{self.tracking_code}",
            page_url=f"/status/{self.tracking_code}", submitted_at=self.now,
        )


def prepare(catalog: Catalog, settings: Settings, cmd: SubmitCommand,
            now: datetime | None = None) -> Prepared:
    """Validate and give the submission its ids (raises a 422 on bad input)."""
    cmd = validate_command(catalog, cmd)
    complaint_id = new_id()  # time-ordered: awasi/ids.py
    secret = (_derived_secret(settings, complaint_id, cmd.idempotency_key)
              if cmd.idempotency_key else new_secret())
    return Prepared(
        cmd=cmd, complaint_id=complaint_id, tracking_code=new_tracking_code(cmd.region),
        secret=secret, reporter_ref="rr_" + secrets.token_hex(16),
        now=now or datetime.now(UTC), photo_ids=[uuid.uuid4() for _ in cmd.photos],
    )


async def store(conn: asyncpg.Connection, items: Sequence[Prepared]) -> None:
    """Write prepared submissions and their ``complaint.submitted`` events; call inside
    one transaction (several submissions may share it: see ``batch.py``)."""
    await db.insert_submissions(conn, [p.complaint_row() for p in items], [
        (p.complaint_id, p.cmd.reporter.name, p.cmd.reporter.phone, p.cmd.reporter.email,
         p.cmd.locale)
        for p in items if p.cmd.reporter is not None])
    await db.insert_photos(conn, [
        (pid, p.complaint_id, photo.content_type, photo.data)
        for p in items for pid, photo in zip(p.photo_ids, p.cmd.photos, strict=True)],
        at_filing=True)
    await add_to_outbox(conn, SCHEMA, topics.INTAKE, *(p.envelope() for p in items),
                        trace_contexts=[p.trace_context for p in items])


async def _store_idempotent(conn: asyncpg.Connection, p: Prepared) -> bool:
    """Claim the Idempotency-Key and store; False if the key was claimed before (the
    INSERT waits for a concurrent claimant's commit, so exactly one wins)."""
    body = p.receipt().model_dump(mode="json", exclude={"secret"})
    claimed = await conn.fetchval(
        "INSERT INTO intake.idempotency_keys (key, request_hash, status, body)"
        " VALUES ($1, $2, 201, $3) ON CONFLICT DO NOTHING RETURNING 1",
        p.cmd.idempotency_key, p.cmd.request_hash or b"", body)
    if claimed is None:
        return False
    await store(conn, [p])
    return True


async def _replay(pool: asyncpg.Pool, settings: Settings, key: str,
                  request_hash: bytes) -> Receipt | None:
    row = await pool.fetchrow(
        "SELECT request_hash, body FROM intake.idempotency_keys WHERE key = $1", key)
    if row is None:
        return None
    if not hmac.compare_digest(bytes(row["request_hash"]), request_hash):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body")
    body = dict(row["body"])
    body["secret"] = _derived_secret(settings, uuid.UUID(body["complaint_id"]), key)
    return Receipt.model_validate(body)


def received(p: Prepared) -> None:
    """Log a stored complaint: its id, region, category and channel only, so the line
    (with its trace id, awasi.jsonlog) leads to the complaint's trace, never to the
    citizen. Call after the commit, in the submitting request's context."""
    with event_context(str(p.complaint_id)):
        log.info("complaint received", extra={
            "region": p.cmd.region, "category": p.cmd.category, "channel": p.cmd.channel})


async def submit_complaint(pool: asyncpg.Pool, catalog: Catalog, settings: Settings,
                           command: SubmitCommand) -> Receipt:
    """Validate, store and publish (through the outbox) one complaint; return the
    receipt only after the commit.

    Raises ``ValidationFailed`` (422) naming the field for bad input, and
    ``IdempotencyKeyReused`` (409) when ``command.idempotency_key`` was used before with
    another ``request_hash``; a retry with the same key and hash returns the first
    receipt (same tracking code and secret) and stores nothing.
    """
    key = command.idempotency_key
    if key is not None:
        replayed = await _replay(pool, settings, key, command.request_hash or b"")
        if replayed is not None:
            return replayed
    for attempt in range(3):
        p = prepare(catalog, settings, command)
        try:
            async with pool.acquire() as conn, conn.transaction():
                if key is None:
                    await store(conn, [p])
                elif not await _store_idempotent(conn, p):
                    break
            received(p)
            return p.receipt()
        except asyncpg.UniqueViolationError:
            # A tracking code or pseudonym collision (one in 2^40): draw new ones.
            if attempt == 2:
                raise
    assert key is not None
    replayed = await _replay(pool, settings, key, command.request_hash or b"")
    assert replayed is not None
    return replayed


# --- the citizen's follow-ups ------------------------------------------------------------

async def _owned(conn: asyncpg.Connection, code: str, secret: str | None) -> asyncpg.Record:
    row = await db.complaint_by_code(conn, normalize_code(code), for_update=True)
    if row is None:
        raise UnknownComplaint("No complaint has this tracking code")
    check_secret(row, secret)
    return row


async def add_info(pool: asyncpg.Pool, code: str, body: InfoIn, photos: Sequence[Photo] = (),
                   now: datetime | None = None) -> dict[str, Any]:
    """The citizen adds information (usually answering the agency's question; to an
    archived complaint, within the catalog's revive window, it revives it). Raises
    ``UnknownComplaint``, ``WrongSecret``, ``NotAllowedNow`` (closed, withdrawn, or
    archived past the window)."""
    now = now or datetime.now(UTC)
    check_count(len(photos))
    async with pool.acquire() as conn, conn.transaction():
        row = await _owned(conn, code, body.secret)
        actions = lifecycle.citizen_actions(row["status"])
        reviving = "revive" in actions and row["revive_until"] is not None \
            and now <= row["revive_until"]
        if "add_info" not in actions and not reviving:
            raise NotAllowedNow(f"The complaint is {row['status']}; it takes no more information")
        ids = [uuid.uuid4() for _ in photos]
        await db.insert_photos(conn, [(pid, row["id"], ph.content_type, ph.data)
                                      for pid, ph in zip(ids, photos, strict=True)])
        state = state_of(row)
        seq = lifecycle.next_seq(state)
        # Answering the agency's question ends the pause (the router resumes its clock).
        step = lifecycle.apply(state, "complaint.info_added", seq)
        changes = state_columns(step.state)
        await db.update_complaint(conn, row["id"], now, **changes)
        await db.add_timeline(conn, [(row["id"], now, "info_added",
                                      {"message": body.message, "photos": len(ids)})])
        await add_to_outbox(conn, SCHEMA, topics.INTAKE, Envelope.build(
            ComplaintInfoAdded(message=body.message, photo_ids=tuple(str(i) for i in ids)),
            complaint_id=str(row["id"]), producer=PRODUCER, occurred_at=now, seq=seq))
    return {"tracking_code": row["tracking_code"], "status": changes["status"]}


def dispute_deadline(catalog: Catalog, row: asyncpg.Record) -> datetime | None:
    """When the dispute window closes: the router's ``dispute_until``, else the
    region's policy counted from the resolution."""
    if row["dispute_until"] is not None:
        return row["dispute_until"]  # type: ignore[no-any-return]
    if row["resolved_at"] is None or row["region"] not in catalog.regions:
        return None
    try:
        days = catalog.policy(row["region"], row["agency"], row["category"]).dispute_days
    except LookupError:
        days = catalog.policy(row["region"]).dispute_days
    return catalog.regions[row["region"]].calendar.add_working_days(row["resolved_at"], days)


def feedback_state(catalog: Catalog, row: asyncpg.Record, now: datetime) -> tuple[bool, bool]:
    """(may rate, may dispute) now: each resolution may be rated once and disputed
    once within its window, in either order (a rating does not rule out a dispute)."""
    actions = lifecycle.citizen_actions(row["status"])
    until = dispute_deadline(catalog, row)
    may_rate = "rate" in actions and row["rating"] is None
    may_dispute = ("dispute" in actions and not row["disputed"] and until is not None
                   and now <= until)
    return may_rate, may_dispute


async def give_feedback(pool: asyncpg.Pool, catalog: Catalog, code: str, body: FeedbackIn,
                        now: datetime | None = None) -> dict[str, Any]:
    """Rate (1-5) and/or dispute the current resolution: one rating and one dispute per
    resolution. A dispute reopens the complaint at once (the router gives the same
    agency fresh deadlines; the panel reviews it). Raises ``UnknownComplaint``,
    ``WrongSecret``, ``NotAllowedNow`` (not resolved, already rated or disputed, or
    a dispute after the dispute window closed)."""
    now = now or datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        row = await _owned(conn, code, body.secret)
        may_rate, may_dispute = feedback_state(catalog, row, now)
        if not may_rate and not may_dispute:
            raise NotAllowedNow("Feedback is possible once per resolution, after the agency "
                                "resolved the complaint")
        if body.rating is not None and not may_rate:
            raise NotAllowedNow("This resolution has already been rated")
        if body.dispute and not may_dispute:
            raise NotAllowedNow("The dispute window has closed")
        state = state_of(row)
        seq = lifecycle.next_seq(state)
        step = lifecycle.apply(state, lifecycle.event_name(
            "complaint.feedback_given", {"dispute": body.dispute}), seq)
        changes: dict[str, Any] = {**state_columns(step.state), "feedback_at": now}
        if body.rating is not None:
            changes.update(rating=body.rating, feedback_comment=body.comment)
        if body.dispute:
            changes["disputed"] = True
        await db.update_complaint(conn, row["id"], now, **changes)
        await db.add_timeline(conn, [(row["id"], now, "feedback_given",
                                      {"rating": body.rating, "dispute": body.dispute})])
        await add_to_outbox(conn, SCHEMA, topics.INTAKE, Envelope.build(
            ComplaintFeedbackGiven(rating=body.rating, comment=body.comment,
                                   dispute=body.dispute),
            complaint_id=str(row["id"]), producer=PRODUCER, occurred_at=now, seq=seq))
    return {"tracking_code": row["tracking_code"], "status": step.state.status,
            "rating": body.rating, "dispute": body.dispute}


async def withdraw(pool: asyncpg.Pool, code: str, body: WithdrawIn,
                   now: datetime | None = None) -> dict[str, Any]:
    """The citizen withdraws an open complaint. Raises ``UnknownComplaint``,
    ``WrongSecret``, ``NotAllowedNow`` (already resolved, closed or withdrawn)."""
    now = now or datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        row = await _owned(conn, code, body.secret)
        if "withdraw" not in lifecycle.citizen_actions(row["status"]):
            raise NotAllowedNow(f"A complaint that is {row['status']} cannot be withdrawn")
        state = state_of(row)
        seq = lifecycle.next_seq(state)
        step = lifecycle.apply(state, "complaint.withdrawn", seq)
        await db.update_complaint(conn, row["id"], now, **state_columns(step.state))
        await db.add_timeline(conn, [(row["id"], now, "withdrawn", {})])
        await add_to_outbox(conn, SCHEMA, topics.INTAKE, Envelope.build(
            ComplaintWithdrawn(reason=body.reason), complaint_id=str(row["id"]),
            producer=PRODUCER, occurred_at=now, seq=seq))
    return {"tracking_code": row["tracking_code"], "status": "withdrawn"}


# --- the public view -------------------------------------------------------------------

async def complaint_status(pool: asyncpg.Pool, catalog: Catalog, code: str, *,
                           secret: str | None = None, owner: bool = False,
                           now: datetime | None = None,
                           attachment_link: Callable[[str], str] | None = None,
                           ) -> dict[str, Any]:
    """A complaint's status as the caller may see it (``visibility.status_view``).

    The tracking code alone gives the status, the agency and the deadlines. The
    conversation (description, the agency's questions and answers, the citizen's own
    messages, feedback) needs ``secret`` (the follow-up secret) or ``owner`` (the
    caller proved it filed the complaint: the receipt cookie, the Telegram chat).
    Raises ``UnknownComplaint``, and ``WrongSecret`` for a secret that is given and
    wrong (a client should know its secret failed, not get less and wonder why).
    ``attachment_link`` (``visibility.attachment_links``) adds the download links of
    the agency's files to the conversation."""
    now = now or datetime.now(UTC)
    row = await db.complaint_by_code(pool, normalize_code(code))
    if row is None:
        raise UnknownComplaint("No complaint has this tracking code")
    if secret is not None:
        check_secret(row, secret)
    access: visibility.Access = "conversation" if owner or secret is not None else "status"
    events = await db.timeline(pool, row["id"]) if access == "conversation" else []
    may_rate, may_dispute = feedback_state(catalog, row, now)
    state = clocks(row, now)
    return visibility.status_view(
        catalog, row, events, access=access, overdue=state.overdue, may_rate=may_rate,
        may_dispute=may_dispute, dispute_until=dispute_deadline(catalog, row),
        paused=state.paused, attachment_link=attachment_link)
