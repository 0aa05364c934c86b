"""Typed event payloads, one frozen model per (type, version).

No payload carries personal data of the reporter: ``reporter_ref`` is a pseudonym
that only intake can turn back into a contact. A new field that old readers must
not ignore means a new version, registered beside the old one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    EVENT_TYPE: ClassVar[str]
    EVENT_VERSION: ClassVar[int] = 1


_REGISTRY: dict[tuple[str, int], type[Payload]] = {}


def register(cls: type[Payload]) -> type[Payload]:
    key = (cls.EVENT_TYPE, cls.EVENT_VERSION)
    if key in _REGISTRY:
        raise ValueError(f"payload {key} registered twice")
    _REGISTRY[key] = cls
    return cls


def payload_model(event_type: str, version: int) -> type[Payload]:
    """The model for ``(event_type, version)``; ``KeyError`` if none is registered."""
    return _REGISTRY[(event_type, version)]


def registered_types() -> list[tuple[str, int]]:
    return sorted(_REGISTRY)


Privacy = Literal["named", "confidential", "anonymous"]
# Whether the report itself may be published (a choice separate from the reporter's
# identity): private reports appear publicly only inside aggregate counts.
Visibility = Literal["public", "private"]


class Location(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=500)


class Deadlines(BaseModel):
    """Due instants (UTC); ``None`` where that clock does not run."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    acknowledge_by: AwareDatetime | None = None
    resolve_by: AwareDatetime | None = None
    triage_by: AwareDatetime | None = None
    dispute_until: AwareDatetime | None = None


# --- intake ---------------------------------------------------------------

@register
class ComplaintSubmitted(Payload):
    EVENT_TYPE: ClassVar[str] = "complaint.submitted"
    tracking_code: str
    region: str
    category: str
    title: str | None = None
    description: str
    location: Location | None = None
    privacy: Privacy
    reporter_ref: str
    channel: Literal["web", "api", "open311", "telegram"] = "api"
    photo_ids: tuple[str, ...] = ()
    submitted_at: AwareDatetime
    # Optional, so events written before the choice existed still parse (as private,
    # the safe reading). No personal data: it says what may be shown, not who wrote it.
    visibility: Visibility = "private"


@register
class ComplaintInfoAdded(Payload):
    EVENT_TYPE: ClassVar[str] = "complaint.info_added"
    message: str
    photo_ids: tuple[str, ...] = ()


@register
class ComplaintFeedbackGiven(Payload):
    EVENT_TYPE: ClassVar[str] = "complaint.feedback_given"
    rating: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = None
    dispute: bool = False


@register
class ComplaintWithdrawn(Payload):
    EVENT_TYPE: ClassVar[str] = "complaint.withdrawn"
    reason: str | None = None


SurveyAnswer = Field(ge=1, le=4)


@register
class SurveyResponseSubmitted(Payload):
    """One answered satisfaction survey (SKM) for a service unit. The envelope's
    ``complaint_id`` is the response's own id (the topic key). No personal data: no
    respondent data, no comment, no device or Telegram id; only the answers, where
    and when. ``duplicate``: the same device or Telegram user answered for this unit
    in this period already; oversight counts it apart and never in the index."""

    EVENT_TYPE: ClassVar[str] = "survey.response_submitted"
    unit: str
    agency: str
    region: str
    answers: dict[Literal["U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8", "U9"],
                  Annotated[int, SurveyAnswer]]
    channel: Literal["web", "api", "telegram"]
    duplicate: bool = False
    submitted_at: AwareDatetime

    @model_validator(mode="after")
    def _all_elements(self) -> SurveyResponseSubmitted:
        if len(self.answers) != 9:
            raise ValueError("answers must hold U1..U9")
        return self


@register
class ComplaintSupported(Payload):
    """Someone supported a public report ("saya juga mengalami"). Carries the new
    total, not the supporter: no device, chat or user id ever leaves intake. A
    consumer keeps the largest total it has seen, so redelivery and reordering are
    harmless."""

    EVENT_TYPE: ClassVar[str] = "complaint.supported"
    support_count: int = Field(ge=1)


# --- router ---------------------------------------------------------------

@register
class ComplaintRouted(Payload):
    EVENT_TYPE: ClassVar[str] = "complaint.routed"
    tracking_code: str
    region: str
    category: str
    agency: str
    rule: str
    deadlines: Deadlines
    warning_share: float = 0.8


@register
class ComplaintNeedsTriage(Payload):
    EVENT_TYPE: ClassVar[str] = "complaint.needs_triage"
    tracking_code: str
    region: str
    category: str
    deadlines: Deadlines


@register
class TicketAcknowledged(Payload):
    EVENT_TYPE: ClassVar[str] = "ticket.acknowledged"
    agency: str
    deadlines: Deadlines


@register
class TicketInfoRequested(Payload):
    EVENT_TYPE: ClassVar[str] = "ticket.info_requested"
    agency: str
    question: str
    paused_at: AwareDatetime


@register
class TicketResponded(Payload):
    EVENT_TYPE: ClassVar[str] = "ticket.responded"
    agency: str
    message: str


# A staff attachment's file name as it may travel: letters, digits, dot, dash,
# underscore, space (``awasi.attachments.safe_file_name`` makes it so).
SAFE_FILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$"


@register
class TicketAttachmentAdded(Payload):
    """The agency sent the citizen a file (a PDF or an image) as an answer. Only the
    attachment's id, kind, type, size and sanitised file name travel: never its
    bytes. The router holds the bytes and serves them through an expiring signed
    link (``awasi.web.signed_links.attachment_link``) that intake gives the citizen."""

    EVENT_TYPE: ClassVar[str] = "ticket.attachment_added"
    agency: str
    attachment_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    kind: Literal["pdf", "image"]
    content_type: Literal["application/pdf", "image/jpeg", "image/png", "image/webp"]
    size: int = Field(ge=1)
    file_name: str = Field(pattern=SAFE_FILE_NAME)


@register
class TicketResolved(Payload):
    EVENT_TYPE: ClassVar[str] = "ticket.resolved"
    agency: str
    note: str
    deadlines: Deadlines


@register
class TicketTransferred(Payload):
    EVENT_TYPE: ClassVar[str] = "ticket.transferred"
    from_agency: str
    agency: str
    reason: str
    deadlines: Deadlines


@register
class TicketReturnedToTriage(Payload):
    """A transfer beyond the limit: instead of bouncing on, the ticket goes back to
    the region's triage officer (``deadlines.triage_by`` counts from now)."""

    EVENT_TYPE: ClassVar[str] = "ticket.returned_to_triage"
    from_agency: str
    reason: str
    deadlines: Deadlines


@register
class TicketReopened(Payload):
    EVENT_TYPE: ClassVar[str] = "ticket.reopened"
    agency: str
    reason: str
    deadlines: Deadlines


RejectionReason = Literal["not_a_complaint", "spam", "duplicate"]


@register
class TicketRejected(Payload):
    """The triage officer refused the complaint; ``reason`` is what the citizen reads
    (and the panel reviews: every rejection goes into its queue)."""

    EVENT_TYPE: ClassVar[str] = "ticket.rejected"
    reason_code: RejectionReason
    reason: str = Field(min_length=1, max_length=2000)
    duplicate_of: str | None = Field(default=None, max_length=40)


@register
class TicketAssigneeChanged(Payload):
    """Who in the agency works the ticket: ``assignee`` (a staff username of
    ``agency``) or None for nobody, and who it was before. Staff usernames are the
    agency's accountable officers, not the reporter's data; the citizen never sees
    this event (intake does not consume it), the panel reads it on the case."""

    EVENT_TYPE: ClassVar[str] = "ticket.assignee_changed"
    agency: str
    assignee: str | None = Field(default=None, max_length=64)
    previous: str | None = Field(default=None, max_length=64)


@register
class TicketDuplicateLinked(Payload):
    """Staff found the complaint is about the same problem as another open complaint
    of the region (the original) and linked it there: this one ends (``rejected``,
    reviewed by the panel like every rejection) and its citizen is told to follow
    the original by its tracking code. Names the original, never its content."""

    EVENT_TYPE: ClassVar[str] = "ticket.duplicate_linked"
    original_complaint_id: str = Field(min_length=1, max_length=64)
    original_tracking_code: str = Field(min_length=1, max_length=40)
    agency: str | None = None


@register
class TicketMovedRegion(Payload):
    """Triage found the complaint is about another city: it moves to that region's
    triage queue (``deadlines.triage_by`` counts from now), with a reason the citizen
    reads."""

    EVENT_TYPE: ClassVar[str] = "ticket.moved_region"
    from_region: str
    region: str
    reason: str = Field(min_length=1, max_length=2000)
    deadlines: Deadlines


@register
class TicketClockResumed(Payload):
    """The citizen answered (``complaint.info_added``): the clock paused by
    ``ticket.info_requested`` runs again, with the deadlines moved by the pause."""

    EVENT_TYPE: ClassVar[str] = "ticket.clock_resumed"
    agency: str
    resumed_at: AwareDatetime
    deadlines: Deadlines


# --- oversight ------------------------------------------------------------

DeadlineKind = Literal["triage", "acknowledge", "resolve"]


@register
class DeadlineWarning(Payload):
    EVENT_TYPE: ClassVar[str] = "deadline.warning"
    kind: DeadlineKind
    agency: str | None = None
    due_at: AwareDatetime


@register
class DeadlineBreached(Payload):
    EVENT_TYPE: ClassVar[str] = "deadline.breached"
    kind: DeadlineKind
    agency: str | None = None
    due_at: AwareDatetime


@register
class CaseEscalated(Payload):
    EVENT_TYPE: ClassVar[str] = "case.escalated"
    level: int = Field(ge=1, le=2)
    kind: DeadlineKind
    agency: str | None = None


FindingOutcome = Literal["no_maladministration", "maladministration", "inconclusive"]
MaladministrationType = Literal[
    "undue_delay", "abuse_of_authority", "illegal_fees", "incompetence", "discrimination",
    "other",
]


@register
class FindingRecorded(Payload):
    EVENT_TYPE: ClassVar[str] = "finding.recorded"
    outcome: FindingOutcome
    maladministration_type: MaladministrationType | None = None
    recommendation: str
    published: bool


@register
class CaseReopened(Payload):
    EVENT_TYPE: ClassVar[str] = "case.reopened"
    reason: str


@register
class CaseClosed(Payload):
    """The case is over: the dispute window passed without a dispute, or the panel
    rejected the citizen's dispute (``note`` is the reason the citizen sees)."""

    EVENT_TYPE: ClassVar[str] = "case.closed"
    reason: Literal["dispute_window_passed", "dispute_rejected"]
    note: str | None = Field(default=None, max_length=2000)


@register
class CaseInfoReminder(Payload):
    """The last reminder: the agency still waits for the citizen's answer, and the
    complaint is archived at ``archive_at`` without it."""

    EVENT_TYPE: ClassVar[str] = "case.info_reminder"
    archive_at: AwareDatetime


@register
class CaseArchived(Payload):
    """The citizen never answered the agency's question: archived. An answer until
    ``revive_until`` revives it."""

    EVENT_TYPE: ClassVar[str] = "case.archived"
    revive_until: AwareDatetime


@register
class CaseClaimed(Payload):
    """A panel member took up a queued case. Who did is on oversight's audit chain,
    not on the topic (agencies read the topic)."""

    EVENT_TYPE: ClassVar[str] = "case.claimed"


RecommendationSource = Literal["finding", "report", "panel"]
RecommendationAnswer = Literal["planned", "in_progress", "done", "declined"]


@register
class RecommendationIssued(Payload):
    """The panel addressed a recommendation to an agency: what, why, by when. On
    oversight's topic (the router shows it to the agency); the envelope's
    ``complaint_id`` is ``rec:<id>``. Who issued it is on oversight's chain only."""

    EVENT_TYPE: ClassVar[str] = "recommendation.issued"
    recommendation_id: str
    region: str
    agency: str
    what: str = Field(min_length=1, max_length=2000)
    why: str = Field(min_length=1, max_length=4000)
    due_date: date
    source_kind: RecommendationSource
    source_ref: str | None = None


@register
class RecommendationAnswered(Payload):
    """The agency's head answered a recommendation on the desk: an action plan and
    its progress (``declined`` needs a reason in ``note``). On the router's topic."""

    EVENT_TYPE: ClassVar[str] = "recommendation.answered"
    recommendation_id: str
    agency: str
    status: RecommendationAnswer
    note: str = Field(min_length=1, max_length=4000)


# --- the panel's own steps, on the audit chain only (never on a topic) ---------------

# A proposal of the two-person rule: a new finding, an amendment or a withdrawal.
ProposalKind = Literal["record", "amend", "withdraw"]


@register
class FindingProposed(Payload):
    """A member proposed a new finding (a draft), an amendment or a withdrawal."""

    EVENT_TYPE: ClassVar[str] = "finding.proposed"
    proposal_id: int
    kind: ProposalKind
    finding_id: int | None = None
    outcome: FindingOutcome | None = None
    maladministration_type: MaladministrationType | None = None
    recommendation: str | None = None
    published: bool | None = None
    reason: str | None = None


@register
class FindingConfirmed(Payload):
    """A second member confirmed a proposal; it took effect."""

    EVENT_TYPE: ClassVar[str] = "finding.confirmed"
    proposal_id: int
    kind: ProposalKind
    finding_id: int


@register
class ClaimReleased(Payload):
    """A panel member gave a claimed case back to the queue. On the audit chain only
    (with the member as actor); agencies have no use for it."""

    EVENT_TYPE: ClassVar[str] = "case.claim_released"



@register
class ReportPublished(Payload):
    """The panel published a period's evaluation report: the SHA-256 of each archived
    file (``{"id.pdf": ..., "id.html": ..., "en.pdf": ..., "en.html": ...}``). Goes on
    oversight's audit chain with the panel member; the envelope's ``complaint_id`` is
    ``report:<region>:<period>[:<agency>]``."""

    EVENT_TYPE: ClassVar[str] = "report.published"
    region: str
    period: str
    agency: str | None = None
    files: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]]


@register
class AuditCheckpoint(Payload):
    """Oversight's signed chain head, on ``awasi.audit.v1`` with the nil UUID as its
    complaint id. ``time`` is the exact text that was signed (see
    services/oversight/audit.py for the signed message)."""

    EVENT_TYPE: ClassVar[str] = "audit.checkpoint"
    seq: int = Field(ge=0)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    time: str
    key_id: str
    algorithm: Literal["Ed25519"]
    signature: str
    public_key: str
    # Every chain head signed ([stream, position, hash]; stream -1 the legacy chain);
    # absent on checkpoints made before the chain had partitions.
    heads: list[tuple[int, int, str]] | None = None


# Probe events: the backbone's own self-test and benchmark traffic.
@register
class ProbePing(Payload):
    EVENT_TYPE: ClassVar[str] = "probe.ping"
    seq: int
    sent_at: datetime | None = None
