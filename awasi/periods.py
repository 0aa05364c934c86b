"""Evaluation periods: a year (``2026``), a half-year (``2026-H2``) or a quarter
(``2026-Q4``), counted in a region's own time zone.

A period is a range of local calendar days ``[first, last]``; an instant belongs to
the period that holds its local date in the region's zone, so 23:30 WIB on 30
September is in Q3 in Medan while the same instant (01:30 WIT on 1 October) is in Q4
in Sorong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

_PATTERN = re.compile(r"^(\d{4})(?:-(H[12]|Q[1-4]))?$")


class BadPeriod(ValueError):
    """Text that is not a period (``2026``, ``2026-H2``, ``2026-Q4``)."""


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One period. ``kind`` is "year", "half" or "quarter"; ``number`` the half or
    quarter (0 for a year)."""

    year: int
    kind: str
    number: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """Raise ``BadPeriod`` for anything but ``YYYY``, ``YYYY-H1|2``, ``YYYY-Q1..4``."""
        m = _PATTERN.match(text.strip()) if isinstance(text, str) else None
        if not m or not 2000 <= int(m[1]) <= 2999:
            raise BadPeriod(f"{text!r} is not a period such as 2026, 2026-H2 or 2026-Q4")
        year = int(m[1])
        if m[2] is None:
            return cls(year, "year", 0)
        return cls(year, "half" if m[2][0] == "H" else "quarter", int(m[2][1]))

    @classmethod
    def quarter_of(cls, day: date) -> Period:
        return cls(day.year, "quarter", (day.month - 1) // 3 + 1)

    @property
    def code(self) -> str:
        if self.kind == "year":
            return str(self.year)
        return f"{self.year}-{'H' if self.kind == 'half' else 'Q'}{self.number}"

    def __str__(self) -> str:
        return self.code

    @property
    def first_day(self) -> date:
        months = {"year": 12, "half": 6, "quarter": 3}[self.kind]
        month = 1 + (self.number - 1) * months if self.number else 1
        return date(self.year, month, 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    def next(self) -> Period:
        """The period of the same kind right after this one."""
        if self.kind == "year":
            return Period(self.year + 1, "year", 0)
        count = 2 if self.kind == "half" else 4
        if self.number == count:
            return Period(self.year + 1, self.kind, 1)
        return Period(self.year, self.kind, self.number + 1)

    def previous(self) -> Period:
        """The period of the same kind right before this one (for "change from the
        previous period")."""
        if self.kind == "year":
            return Period(self.year - 1, "year", 0)
        count = 2 if self.kind == "half" else 4
        if self.number == 1:
            return Period(self.year - 1, self.kind, count)
        return Period(self.year, self.kind, self.number - 1)

    def contains(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """The period as aware instants ``[start, end)`` in ``timezone``."""
        tz = ZoneInfo(timezone)
        start = datetime.combine(self.first_day, datetime.min.time(), tzinfo=tz)
        end = datetime.combine(self.next().first_day, datetime.min.time(), tzinfo=tz)
        return start, end

    def ended(self, now: datetime, timezone: str) -> bool:
        """Whether the period is over at ``now`` in the region's zone."""
        return now >= self.bounds(timezone)[1]


def local_day(at: datetime, timezone: str) -> date:
    """The calendar date of the aware instant ``at`` in ``timezone``."""
    if at.tzinfo is None:
        raise ValueError("a naive datetime has no local day")
    return at.astimezone(ZoneInfo(timezone)).date()


def current_quarter(at: datetime, timezone: str) -> Period:
    """The quarter that holds ``at`` in ``timezone``."""
    return Period.quarter_of(local_day(at, timezone))
