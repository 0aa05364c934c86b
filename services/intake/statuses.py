"""The statuses the citizen sees and the overdue rule, read from the one lifecycle
(``awasi.lifecycle``), in a module of their own so that both ``domain`` (the
citizen's status) and ``visibility`` (the public view) use it without importing each
other."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from awasi import lifecycle

# Statuses the citizen sees (the consumer moves them along the router's and
# oversight's events).
OPEN_STATUSES = lifecycle.OPEN
TERMINAL_STATUSES = lifecycle.ENDED


def clocks(row: Any, now: datetime) -> lifecycle.ClockState:
    """The complaint's clocks as the lifecycle table says they run in its status.
    ``row`` has the complaint's status, breached, triage_by, acknowledge_by,
    resolve_by and dispute_until."""
    return lifecycle.clock_state(
        row["status"], {"triage": row["triage_by"], "acknowledge": row["acknowledge_by"],
                        "resolve": row["resolve_by"], "dispute": row["dispute_until"]},
        now, row["breached"] or ())


def overdue(row: Any, now: datetime) -> dict[str, bool]:
    """Which of the agency's clocks are overdue now: only a clock that runs in this
    status (never while paused waiting for the citizen) whose due instant passed or
    whose breach oversight reported."""
    return clocks(row, now).overdue
