"""The one lifecycle's table (awasi/lifecycle.py): transitions, ordering, clocks,
what each party may do, and the generated documentation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from awasi import lifecycle as lc
from awasi.cli import main
from services.oversight import stats

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DOC = Path(__file__).resolve().parent.parent / "docs" / "LIFECYCLE.md"


def run(*events: tuple[str, int | None]) -> lc.State:
    state = lc.State(seq=1, status_seq=1)
    for name, seq in events:
        state = lc.apply(state, name, seq).state
    return state


def test_the_happy_path() -> None:
    s = run(("complaint.routed", 2), ("ticket.acknowledged", 3), ("ticket.resolved", 4),
            ("case.closed", 5))
    assert (s.status, s.seq, s.status_seq) == ("closed", 5, 5)


def test_a_pause_ends_where_it_began() -> None:
    s = run(("complaint.routed", 2), ("ticket.info_requested", 3))
    assert (s.status, s.paused_from) == ("waiting_info", "assigned")
    answered = lc.apply(s, "complaint.info_added", 4).state
    assert (answered.status, answered.paused_from) == ("assigned", None)
    # The router's resumption, after the answer: same status, its deadlines apply.
    step = lc.apply(answered, "ticket.clock_resumed", 5)
    assert step.outcome == "moved" and step.state.status == "assigned"
    s = run(("complaint.routed", 2), ("ticket.acknowledged", 3), ("ticket.info_requested", 4),
            ("ticket.clock_resumed", 5))
    assert s.status == "acknowledged"


def test_a_dispute_reopens_at_once() -> None:
    s = run(("complaint.routed", 2), ("ticket.resolved", 3))
    step = lc.apply(s, lc.event_name("complaint.feedback_given", {"dispute": True}), 4)
    assert step.state.status == "reopened"
    # A rating alone is news: it moves nothing.
    step = lc.apply(s, lc.event_name("complaint.feedback_given", {"rating": 4}), 4)
    assert (step.outcome, step.state.status) == ("news", "resolved")


@pytest.mark.parametrize("late", ["complaint.routed", "ticket.acknowledged",
                                  "ticket.reopened", "ticket.resolved",
                                  "complaint.needs_triage"])
def test_withdrawn_never_reopens(late: str) -> None:
    s = run(("complaint.withdrawn", 2))
    for seq in (None, 1, 2, 3, 99):
        step = lc.apply(s, late, seq)
        assert step.state.status == "withdrawn" and not step.applies


def test_an_older_fact_never_undoes_a_newer_one() -> None:
    s = run(("complaint.routed", 2), ("ticket.resolved", 5))
    # The panel reopened (seq 6) before this consumer saw an older resolution again.
    reopened = lc.apply(s, "case.reopened", 6).state
    step = lc.apply(reopened, "ticket.resolved", 5)
    assert (step.outcome, step.state.status, step.state.seq) == ("stale", "reopened", 6)
    # A breach of a clock the reopening replaced is stale too; a message never is.
    assert lc.apply(reopened, "deadline.breached", 5).outcome == "stale"
    assert lc.apply(reopened, "ticket.responded", 5).outcome == "news"
    # An event from a producer before sequence numbers is never stale.
    assert lc.apply(reopened, "ticket.resolved", None).outcome == "moved"


def test_closed_never_reopens_by_accident() -> None:
    # The scheduler stamps the closing with the resolution's own seq (3).
    s = run(("complaint.routed", 2), ("ticket.resolved", 3), ("case.closed", 3))
    assert s.status == "closed"
    for event in ("complaint.routed", "ticket.acknowledged", "ticket.resolved",
                  "ticket.clock_resumed", "ticket.transferred", "complaint.info_added"):
        assert not lc.apply(s, event, 9).applies, event
    # The panel's deliberate reopening does.
    assert lc.apply(s, "case.reopened", 9).state.status == "reopened"
    assert lc.apply(s, "case.reopened", 2).outcome == "stale"
    # A dispute of this resolution made in the window (it saw seq 3) wins over the
    # closing that raced it; a dispute of an older resolution does not.
    assert lc.apply(s, "complaint.disputed", 4).state.status == "reopened"
    assert lc.apply(s, "complaint.disputed", 2).outcome == "stale"


def test_a_rejected_dispute_closes_the_reopened_complaint() -> None:
    rejected = lc.event_name("case.closed", {"reason": "dispute_rejected"})
    assert rejected == "case.dispute_rejected"
    # Any other closing (the window passed) is the plain ``case.closed``.
    assert lc.event_name("case.closed", {"reason": "window_passed"}) == "case.closed"
    assert lc.event_name("case.closed", {}) == "case.closed"
    assert lc.event_name("case.closed") == "case.closed"
    # The reason matters only on a closing.
    assert lc.event_name("ticket.resolved", {"reason": "dispute_rejected"}) == "ticket.resolved"
    s = run(("complaint.routed", 2), ("ticket.resolved", 3),
            ("complaint.disputed", 4), ("ticket.acknowledged", 5))
    assert s.status == "acknowledged"
    # The panel rejects the dispute: closed wherever the reopened ticket stands, which
    # a plain closing (only from ``resolved``) is not.
    assert lc.apply(s, "case.closed", 6).outcome == "refused"
    assert lc.apply(s, rejected, 6).state.status == "closed"


def test_every_outcome_keeps_the_highest_sequence_number() -> None:
    s = run(("complaint.routed", 2), ("ticket.acknowledged", 3))
    news = lc.apply(s, "ticket.responded", 7)
    assert (news.outcome, news.state.seq, news.state.status_seq) == ("news", 7, 3)
    refused = lc.apply(s, "case.closed", 8)
    assert (refused.outcome, refused.state.seq, refused.state.status) == (
        "refused", 8, "acknowledged")
    assert not refused.applies
    # The next event this service produces is stamped one above what it knows.
    assert lc.next_seq(refused.state) == 9
    # An unnumbered event on a new complaint knows nothing newer than 0.
    fresh = lc.apply(lc.State(), "complaint.needs_triage", None).state
    assert (fresh.status, fresh.seq, fresh.status_seq) == ("triage", 0, 0)
    assert lc.next_seq(fresh) == 1


def test_an_unnumbered_move_keeps_the_fact_behind_the_status() -> None:
    s = run(("complaint.routed", 2), ("ticket.resolved", 5), ("case.reopened", 6))
    moved = lc.apply(s, "ticket.resolved", None).state
    assert (moved.status, moved.seq, moved.status_seq) == ("resolved", 6, 6)
    assert lc.apply(moved, "ticket.reopened", 5).outcome == "stale"


def test_an_archived_complaint_revives_where_its_pause_began() -> None:
    s = run(("complaint.routed", 2), ("ticket.info_requested", 3), ("case.archived", 4))
    assert (s.status, s.paused_from) == ("archived", "assigned")
    revived = lc.apply(s, "complaint.info_added", 5).state
    assert (revived.status, revived.paused_from) == ("assigned", None)


def test_leaving_a_pause_otherwise_forgets_where_it_began() -> None:
    s = run(("complaint.routed", 2), ("ticket.info_requested", 3), ("ticket.transferred", 4))
    assert s.status == "assigned" and s.paused_from is None


def test_a_pause_of_unknown_origin_resumes_acknowledged() -> None:
    # A row that never recorded where its pause began (the column is nullable).
    s = lc.State(status="waiting_info", seq=3, status_seq=3, paused_from=None)
    assert lc.apply(s, "complaint.info_added", 4).state.status == "acknowledged"


def test_the_citizens_withdrawal_wins_a_race() -> None:
    # The citizen withdrew (seq 3) before hearing of the resolution (seq 4).
    s = run(("complaint.routed", 2), ("ticket.resolved", 4))
    step = lc.apply(s, "complaint.withdrawn", 3)
    assert (step.outcome, step.state.status) == ("moved", "withdrawn")
    # ...but the citizen may withdraw only an open complaint.
    assert "withdraw" not in lc.citizen_actions("resolved")


def test_every_status_and_target_is_declared() -> None:
    for (source, event), target in lc.TRANSITIONS.items():
        assert source in lc.STATUSES, source
        assert target in (*lc.STATUSES, lc.RESUME, lc.SAME), (event, target)
    for status in lc.STATUSES:
        assert set(lc.running_clocks(status)) <= set(lc.CLOCKS)


def test_citizen_and_staff_actions() -> None:
    assert lc.citizen_actions("resolved") == ("add_info", "rate", "dispute")
    assert "withdraw" in lc.citizen_actions("waiting_info")
    assert lc.citizen_actions("withdrawn") == () and lc.citizen_actions("closed") == ()
    assert lc.staff_actions("triage") == ("route", "reject", "move_region", "link_duplicate")
    assert "link_duplicate" in lc.staff_actions("waiting_info")
    assert "acknowledge" not in lc.staff_actions("acknowledged")
    assert lc.staff_actions("resolved") == ()


def test_clocks_overdue_only_when_the_table_says_they_run() -> None:
    past, future = NOW - timedelta(hours=1), NOW + timedelta(days=3)
    due = {"triage": past, "acknowledge": past, "resolve": future, "dispute": past}
    c = lc.clock_state("assigned", due, NOW)
    assert c.overdue == {"triage": False, "acknowledge": True, "resolve": False}
    assert not c.paused and c.next_due == past
    # Paused: waiting for the citizen, nothing is overdue, even a reported breach.
    c = lc.clock_state("waiting_info", due, NOW, breached=["resolve"])
    assert c.paused and not c.any_overdue and c.next_due is None
    # Acknowledged: the acknowledgement clock stopped running.
    c = lc.clock_state("acknowledged", due, NOW, breached=["acknowledge"])
    assert c.overdue["acknowledge"] is False
    assert lc.clock_state("acknowledged", due, NOW, breached=["resolve"]).overdue["resolve"]
    # A deadline falling due this very instant has not passed yet.
    c = lc.clock_state("acknowledged", {"resolve": NOW}, NOW)
    assert c.overdue["resolve"] is False
    assert lc.clock_state("acknowledged", {"resolve": NOW}, NOW + timedelta(seconds=1)
                          ).overdue["resolve"]
    # The dispute window is the citizen's: it runs, and is never "overdue".
    c = lc.clock_state("resolved", due, NOW)
    assert c.running == ("dispute",) and not c.any_overdue and c.due["dispute"] == past


def test_statistics_count_resolved_as_the_table_says() -> None:
    assert lc.counts_as_resolved("closed", open_dispute=True)
    assert lc.counts_as_resolved("resolved", open_dispute=False)
    assert not lc.counts_as_resolved("resolved", open_dispute=True)
    assert not lc.counts_as_resolved("reopened", open_dispute=False)
    # The SQL of the statistics says the same.
    assert stats.RESOLVED_SQL == (
        "(status = 'closed' OR (status = 'resolved' AND NOT resolution_disputed))")


def _block(text: str, lang: str) -> str:
    m = re.search(rf"```{lang}\n(.*?)```", text, re.S)
    assert m, f"no {lang} block in {DOC}"
    return m[1]


def test_the_documented_diagram_and_table_are_generated(
        capsys: pytest.CaptureFixture[str]) -> None:
    doc = DOC.read_text()
    assert main(["lifecycle", "diagram"]) == 0
    assert _block(doc, "mermaid") == capsys.readouterr().out == lc.mermaid()
    assert main(["lifecycle", "table"]) == 0
    table = capsys.readouterr().out
    assert table in doc, "docs/LIFECYCLE.md: paste `awasi lifecycle table` again"
