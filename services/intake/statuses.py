"""The statuses the citizen sees and the overdue rule, in a module of their own so
that both ``domain`` (the citizen's status) and ``visibility`` (the public view)
read the one rule without importing each other."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# Statuses the citizen sees (the consumer moves them along the router's events).
OPEN_STATUSES = ("submitted", "triage", "routed", "acknowledged", "info_requested",
                 "responded", "reopened", "disputed")
TERMINAL_STATUSES = ("withdrawn", "closed")


def overdue(row: Any, now: datetime) -> dict[str, bool]:
    """Which clocks are overdue now (due passed, or oversight reported a breach, and
    the step is not done). ``row`` has the complaint's status, breached, triage_by,
    acknowledge_by, acknowledged_at, resolve_by and resolved_at."""
    open_ = row["status"] in OPEN_STATUSES
    breached = set(row["breached"] or ())

    def late(kind: str, due: datetime | None, done: bool) -> bool:
        return bool(open_ and not done and (kind in breached or (due is not None and due < now)))

    return {
        "triage": late("triage", row["triage_by"], row["status"] != "triage"),
        "acknowledge": late("acknowledge", row["acknowledge_by"],
                            row["acknowledged_at"] is not None),
        "resolve": late("resolve", row["resolve_by"], row["resolved_at"] is not None),
    }
