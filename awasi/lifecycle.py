"""The one lifecycle of a complaint: its statuses, the events that move it between
them, what the citizen and the agency may do in each, and which clocks run.

Intake's citizen view, the router's ticket and oversight's case all derive their
status from ``apply`` and their deadlines' state from ``clock_state``; none keeps its
own copy of these rules. Pure: no I/O, no clock, no service imported.

Ordering: events of one complaint travel on three topics and may arrive in any order
across them. Every event carries ``seq``, the complaint's sequence number as its
producer knew it (a Lamport clock: a producer stamps ``known + 1``, a consumer keeps
the highest it has seen). ``apply`` refuses to let an event older than the fact that
set the current status (``seq < status_seq``) change the status: it is ``stale``,
recorded on the timeline and otherwise ignored. Independently, ``withdrawn`` and
``rejected`` are absorbing and ``closed`` is left only by the panel's deliberate
reopening, so a late ``complaint.routed`` can never bring a withdrawn complaint back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

Status = Literal["submitted", "triage", "assigned", "acknowledged", "waiting_info",
                 "resolved", "reopened", "closed", "archived", "rejected", "withdrawn"]

STATUSES: tuple[str, ...] = ("submitted", "triage", "assigned", "acknowledged",
                             "waiting_info", "resolved", "reopened", "closed", "archived",
                             "rejected", "withdrawn")
# The agency (or triage) still has work to do.
OPEN: tuple[str, ...] = ("submitted", "triage", "assigned", "acknowledged", "waiting_info",
                         "reopened")
# With an agency: the desk's working statuses.
WITH_AGENCY: tuple[str, ...] = ("assigned", "acknowledged", "waiting_info", "reopened")
# Nothing more happens (``archived`` may still be revived by the citizen's answer).
ENDED: tuple[str, ...] = ("closed", "archived", "rejected", "withdrawn")

# The target meaning "back to the status the pause interrupted".
RESUME = "<resume>"
# The target meaning "stay, but take the event's facts" (its deadlines).
SAME = "<same>"

# Events as the lifecycle knows them: the envelope type, except a feedback that
# disputes the resolution, which is ``complaint.disputed`` (see ``event_name``).
_TABLE: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("complaint.needs_triage", ("submitted",), "triage"),
    ("complaint.routed", ("submitted", "triage"), "assigned"),
    # Triage refused it (not a complaint, spam, a duplicate), with a reason.
    ("ticket.rejected", ("triage",), "rejected"),
    # Staff linked it to an open complaint about the same problem (the original): it
    # ends here, the citizen follows the original, and the panel reviews the link as
    # it reviews every rejection.
    ("ticket.duplicate_linked", ("triage", *WITH_AGENCY), "rejected"),
    # Wrong city: to the right region's triage queue.
    ("ticket.moved_region", ("triage",), SAME),
    ("ticket.acknowledged", ("assigned", "reopened"), "acknowledged"),
    ("ticket.info_requested", ("assigned", "acknowledged", "reopened"), "waiting_info"),
    # The citizen's answer ends the pause; to an archived complaint, within the
    # catalog's revive window (intake checks it), it revives it.
    ("complaint.info_added", ("waiting_info", "archived"), RESUME),
    ("ticket.clock_resumed", ("waiting_info", "archived"), RESUME),
    # The citizen's answer already ended the pause here (intake, oversight): the
    # router's resumption still brings the deadlines the pause moved.
    ("ticket.clock_resumed", ("assigned", "acknowledged", "reopened"), SAME),
    ("ticket.resolved", WITH_AGENCY, "resolved"),
    ("ticket.transferred", WITH_AGENCY, "assigned"),
    # A transfer beyond ``MAX_TRANSFERS``: back to the region's triage officer.
    ("ticket.returned_to_triage", WITH_AGENCY, "triage"),
    # A dispute made inside the window wins over the window's closing racing it on
    # another topic (the citizen's right; intake checked the window).
    ("complaint.disputed", ("resolved", "closed"), "reopened"),
    ("ticket.reopened", ("resolved", "reopened", "closed"), "reopened"),
    # The panel reopens deliberately; the only way out of ``closed``.
    ("case.reopened", ("resolved", "closed"), "reopened"),
    # The citizen never answered (the catalog's incomplete_archive_days, a reminder
    # first): oversight's scheduler archives it.
    ("case.archived", ("waiting_info",), "archived"),
    # The dispute window passed without a dispute.
    ("case.closed", ("resolved",), "closed"),
    # The panel rejected the citizen's dispute: the reopened ticket is closed
    # wherever it stands (``case.closed`` with the reason ``dispute_rejected``).
    ("case.dispute_rejected", ("resolved", *WITH_AGENCY), "closed"),
    # The citizen may withdraw only an open complaint (``citizen_actions``), but a
    # withdrawal made while the agency's resolution or the closing was still on its
    # way wins over them: the citizen's intent stands everywhere.
    ("complaint.withdrawn", (*OPEN, "resolved", "closed", "rejected", "archived"),
     "withdrawn"),
)

TRANSITIONS: dict[tuple[str, str], str] = {
    (source, event): target for event, sources, target in _TABLE for source in sources
}
# Events that may move a complaint (anything else is news that never changes status).
STATUS_EVENTS: frozenset[str] = frozenset(e for _, e in TRANSITIONS)
# News about clocks: a warning or breach of a clock that a newer fact restarted or
# stopped must not mark the new one late.
CLOCK_NEWS: frozenset[str] = frozenset({"deadline.warning", "deadline.breached",
                                        "case.escalated"})
# Events that could undo a newer fact, and so can be stale. A message, a finding or
# a rating older than the current status is still true, and always applies; so is
# the citizen's withdrawal (their intent stands, whatever the agency did meanwhile).
UNDOABLE: frozenset[str] = (STATUS_EVENTS | CLOCK_NEWS) - {"complaint.withdrawn"}

# Transfers between agencies before a further one sends the ticket back to triage.
MAX_TRANSFERS = 2

# What the citizen may do in each status (the service checks the finer conditions:
# one rating per resolution, the dispute window).
CitizenAction = Literal["add_info", "rate", "dispute", "withdraw", "revive"]
_CITIZEN: dict[str, tuple[CitizenAction, ...]] = {
    **{s: ("add_info", "withdraw") for s in OPEN},
    "resolved": ("add_info", "rate", "dispute"),
    "archived": ("revive",),
}

# What agency staff (and the triage officer) may do in each status.
StaffAction = Literal["route", "reject", "move_region", "acknowledge", "request_info", "respond",
                      "resolve", "transfer", "link_duplicate"]
_STAFF: dict[str, tuple[StaffAction, ...]] = {
    "triage": ("route", "reject", "move_region", "link_duplicate"),
    "assigned": ("acknowledge", "request_info", "respond", "resolve", "transfer",
                 "link_duplicate"),
    "reopened": ("acknowledge", "request_info", "respond", "resolve", "transfer",
                 "link_duplicate"),
    "acknowledged": ("request_info", "respond", "resolve", "transfer", "link_duplicate"),
    "waiting_info": ("respond", "resolve", "transfer", "link_duplicate"),
}

# Which clocks run in each status. ``dispute`` is the citizen's window, never overdue.
Clock = Literal["triage", "acknowledge", "resolve", "dispute"]
CLOCKS: tuple[Clock, ...] = ("triage", "acknowledge", "resolve", "dispute")
_RUNNING: dict[str, tuple[Clock, ...]] = {
    "triage": ("triage",),
    "assigned": ("acknowledge", "resolve"),
    "reopened": ("acknowledge", "resolve"),
    "acknowledged": ("resolve",),
    "resolved": ("dispute",),
}
# Statuses in which the agency's clock is stopped because it waits for the citizen.
PAUSED: tuple[str, ...] = ("waiting_info",)


@dataclass(frozen=True, slots=True)
class State:
    """A complaint's lifecycle state as one service holds it.

    ``seq``: the highest sequence number known; ``status_seq``: that of the fact that
    set ``status``; ``paused_from``: the status a pause interrupted."""

    status: str = "submitted"
    seq: int = 0
    status_seq: int = 0
    paused_from: str | None = None


Outcome = Literal["moved", "news", "stale", "refused"]


@dataclass(frozen=True, slots=True)
class Step:
    """``apply``'s answer. ``moved``: the status changed (or was set again, with the
    event's fresh facts); ``news``: an event that never moves a complaint; ``stale``:
    older than the fact behind the current status; ``refused``: the table has no
    transition from the current status (a late or impossible event). Only ``moved``
    and ``news`` may change deadlines; every outcome is still recorded on a timeline."""

    state: State
    outcome: Outcome

    @property
    def applies(self) -> bool:
        return self.outcome in ("moved", "news")


def event_name(event_type: str, payload: Mapping[str, Any] | None = None) -> str:
    """The lifecycle's name for an event: its type, except that a feedback disputing
    the resolution is ``complaint.disputed`` and a closing because the panel rejected
    the dispute is ``case.dispute_rejected``."""
    if event_type == "complaint.feedback_given" and payload and payload.get("dispute"):
        return "complaint.disputed"
    if event_type == "case.closed" and payload and payload.get("reason") == "dispute_rejected":
        return "case.dispute_rejected"
    return event_type


def next_seq(state: State) -> int:
    """The sequence number a producer stamps on its next event of this complaint."""
    return state.seq + 1


def apply(state: State, event: str, seq: int | None = None) -> Step:
    """The state after ``event`` (a name from ``event_name``) stamped ``seq``.

    ``seq`` None (an event from a producer that predates sequence numbers) is never
    stale. The returned state's ``seq`` is the highest known, whatever the outcome."""
    known = max(state.seq, seq or 0)
    if seq is not None and seq < state.status_seq and event in UNDOABLE:
        return Step(replace(state, seq=known), "stale")
    if event not in STATUS_EVENTS:
        return Step(replace(state, seq=known), "news")
    target = TRANSITIONS.get((state.status, event))
    if target is None:
        return Step(replace(state, seq=known), "refused")
    paused_from = state.paused_from
    if target == SAME:
        target = state.status
    elif target == RESUME:
        target = state.paused_from or "acknowledged"
        paused_from = None
    elif target in PAUSED:
        paused_from = state.status
    elif target == "archived":
        paused_from = state.paused_from  # a revival resumes where the pause began
    else:
        paused_from = None
    return Step(State(status=target, seq=known, status_seq=seq if seq is not None
                      else state.status_seq, paused_from=paused_from), "moved")


def citizen_actions(status: str) -> tuple[CitizenAction, ...]:
    """What the citizen may do in ``status`` (``add_info``, ``rate``, ``dispute``,
    ``withdraw``, ``revive``)."""
    return _CITIZEN.get(status, ())


def staff_actions(status: str) -> tuple[StaffAction, ...]:
    """What agency staff (``route``, ``reject``: the triage officer) may do in
    ``status``."""
    return _STAFF.get(status, ())


def running_clocks(status: str) -> tuple[Clock, ...]:
    return _RUNNING.get(status, ())


@dataclass(frozen=True, slots=True)
class ClockState:
    """Each clock's due instant (where it runs), which are overdue, and whether the
    agency's clock is paused waiting for the citizen."""

    due: dict[str, datetime | None]
    overdue: dict[str, bool]
    paused: bool
    running: tuple[str, ...]

    @property
    def next_due(self) -> datetime | None:
        """The earliest running deadline of the agency (not the citizen's window)."""
        dues = [d for k, d in self.due.items() if d is not None and k != "dispute"]
        return min(dues) if dues else None

    @property
    def any_overdue(self) -> bool:
        return any(self.overdue.values())


def clock_state(status: str, deadlines: Mapping[str, datetime | None], now: datetime,
                breached: Iterable[str] = ()) -> ClockState:
    """The clocks of a complaint in ``status`` with ``deadlines`` (keys ``triage``,
    ``acknowledge``, ``resolve``, ``dispute``). A clock is overdue only when it runs
    in this status and its due instant passed (or oversight reported its breach);
    while paused, nothing is overdue."""
    running = running_clocks(status)
    late = set(breached)
    due = {k: (deadlines.get(k) if k in running else None) for k in CLOCKS}
    overdue = {k: (k in running and k != "dispute"
                   and (k in late or (due[k] is not None and due[k] < now)))  # type: ignore[operator]
               for k in CLOCKS if k != "dispute"}
    return ClockState(due=due, overdue=overdue, paused=status in PAUSED, running=running)


def counts_as_resolved(status: str, open_dispute: bool) -> bool:
    """Whether statistics count the case as resolved: ``closed``, or ``resolved``
    without an open dispute. "Resolved, disputed" never counts."""
    return status == "closed" or (status == "resolved" and not open_dispute)


# Statuses the statistics count as resolved (for SQL: ``status = ANY(...)`` together
# with ``NOT resolution_disputed`` for ``resolved``).
RESOLVED_FOR_STATS: tuple[str, ...] = ("resolved", "closed")


def markdown() -> str:
    """The table as people read it: per status, the events that move it, what the
    citizen and the agency may do, and which clocks run (docs/LIFECYCLE.md)."""
    rows = ["| status | event -> next status | citizen may | agency may | clocks |",
            "| --- | --- | --- | --- | --- |"]
    for status in STATUSES:
        moves = [f"`{event}` -> {_target_text(status, target)}"
                 for event, sources, target in _TABLE if status in sources]
        clocks = list(running_clocks(status)) or (["paused"] if status in PAUSED else [])
        rows.append("| `{}` | {} | {} | {} | {} |".format(
            status, "<br>".join(moves) or "-", ", ".join(citizen_actions(status)) or "-",
            ", ".join(staff_actions(status)) or "-", ", ".join(clocks) or "-"))
    return "\n".join(rows) + "\n"


def _target_text(source: str, target: str) -> str:
    if target == SAME:
        return f"`{source}` (new deadlines)"
    if target == RESUME:
        return "the status before the pause"
    return f"`{target}`"


def mermaid() -> str:
    """The table as a Mermaid state diagram (docs/LIFECYCLE.md holds this text)."""
    lines = ["stateDiagram-v2", "    [*] --> submitted: complaint.submitted"]
    for event, sources, target in _TABLE:
        for source in sources:
            if target == SAME:
                lines.append(f"    {source} --> {source}: {event}")
            elif target == RESUME:
                for back in ("assigned", "acknowledged", "reopened"):
                    lines.append(f"    {source} --> {back}: {event}")
            else:
                lines.append(f"    {source} --> {target}: {event}")
    reached = {t for (_, _), t in TRANSITIONS.items()}
    for end in ("closed", "archived", "rejected", "withdrawn"):
        if end in reached:
            lines.append(f"    {end} --> [*]")
    return "\n".join(lines) + "\n"
