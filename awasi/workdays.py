"""Working-day arithmetic for one region: its time zone, weekends, Indonesian public
holidays and the region's own extra days off.

Every deadline in Awasi is counted in working days on the region's local calendar
(DESIGN.md, "Deadlines"). A *working day* is a local calendar day, Monday to Friday,
that is neither a public holiday of the country (the ``holidays`` package) nor one of
the region's extra days off. Working *time* is the time that falls inside working
days, midnight to midnight local time: a clock paused on Friday evening and resumed on
Monday morning has lost only the hours of Friday that were left.

All inputs must be timezone-aware datetimes (a naive one raises ``ValueError``); all
results are aware datetimes in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = ["WorkCalendar", "public_holidays"]

_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)


@lru_cache(maxsize=256)
def public_holidays(country: str, year: int) -> frozenset[date]:
    """The public holidays of ``country`` (ISO code, e.g. "ID") in ``year``.

    Cached per (country, year): building the ``holidays`` table computes lunar and
    Islamic calendar dates, which is too slow to repeat for every deadline.
    """
    return frozenset(holidays.country_holidays(country, years=year).keys())


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


class WorkCalendar:
    """The working-day calendar of one region.

    ``timezone`` is an IANA name (``Asia/Jakarta`` WIB, ``Asia/Makassar`` WITA,
    ``Asia/Jayapura`` WIT; raises ``ValueError`` if unknown). ``days_off`` are extra
    non-working dates of the region; ``annual_days_off`` are (month, day) pairs that
    are off every year (a city's anniversary). ``country`` selects the public holidays.
    """

    __slots__ = ("timezone", "tz", "days_off", "annual_days_off", "country")

    def __init__(
        self,
        timezone: str,
        days_off: Iterable[date] = frozenset(),
        country: str = "ID",
        annual_days_off: Iterable[tuple[int, int]] = frozenset(),
    ) -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown IANA time zone {timezone!r}") from e
        self.timezone = timezone
        self.days_off = frozenset(days_off)
        self.annual_days_off = frozenset(annual_days_off)
        self.country = country

    def __repr__(self) -> str:
        return (f"WorkCalendar(timezone={self.timezone!r}, days_off={len(self.days_off)}, "
                f"annual_days_off={len(self.annual_days_off)}, country={self.country!r})")

    # --- days ---------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        """True if local date ``d`` is Monday-Friday, not a public holiday and not a
        day off of the region."""
        if isinstance(d, datetime):  # a datetime is a date too; take its local date
            d = self.local_date(d)
        if d.weekday() >= 5:
            return False
        if d in self.days_off or (d.month, d.day) in self.annual_days_off:
            return False
        return d not in public_holidays(self.country, d.year)

    def local_date(self, instant: datetime) -> date:
        """The region's calendar date at ``instant`` (aware)."""
        _require_aware("instant", instant)
        return instant.astimezone(self.tz).date()

    def day_start(self, d: date) -> datetime:
        """The instant (UTC) at which local date ``d`` begins (local midnight)."""
        return datetime.combine(d, time(0), tzinfo=self.tz).astimezone(UTC)

    def day_end(self, d: date) -> datetime:
        """The instant (UTC) at which local date ``d`` ends (the next local midnight)."""
        return self.day_start(d + _ONE_DAY)

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after local date ``d``."""
        d += _ONE_DAY
        while not self.is_working_day(d):
            d += _ONE_DAY
        return d

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The end (the local midnight that closes it, in UTC) of the ``days``-th
        working day after ``start``'s local date; the start day itself never counts.

        A complaint received on Friday 23:30 WIT with 5 working days is due at the end
        of the following Friday: Saturday 00:00 WIT. ``days == 0`` returns ``start``
        (in UTC). Raises ``ValueError`` for a naive ``start`` or negative ``days``.
        """
        _require_aware("start", start)
        if days < 0:
            raise ValueError(f"days must not be negative, got {days}")
        if days == 0:
            return start.astimezone(UTC)
        d = self.local_date(start)
        for _ in range(days):
            d = self.next_working_day(d)
        return self.day_end(d)

    # --- working time -------------------------------------------------------------

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """The working time from ``a`` to ``b``: only time on working days (local
        calendar days) counts. Zero if ``b <= a``. Raises ``ValueError`` if naive."""
        _require_aware("a", a)
        _require_aware("b", b)
        a, b = a.astimezone(UTC), b.astimezone(UTC)
        if b <= a:
            return _ZERO
        total = _ZERO
        d = self.local_date(a)
        last = self.local_date(b)
        while d <= last:
            if self.is_working_day(d):
                lo = max(a, self.day_start(d))
                hi = min(b, self.day_end(d))
                if hi > lo:
                    total += hi - lo
            d += _ONE_DAY
        return total

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """The instant (UTC) at which ``amount`` of working time has elapsed after
        ``start``, skipping non-working days. A result that ends a working day exactly
        is that day's closing midnight. ``amount == 0`` returns ``start``.

        Raises ``ValueError`` for a naive ``start`` or a negative ``amount``.
        """
        _require_aware("start", start)
        if amount < _ZERO:
            raise ValueError(f"amount must not be negative, got {amount}")
        cursor = start.astimezone(UTC)
        remaining = amount
        if remaining == _ZERO:
            return cursor
        d = self.local_date(cursor)
        while True:
            end = self.day_end(d)
            if self.is_working_day(d):
                available = end - cursor
                if remaining <= available:
                    return cursor + remaining
                remaining -= available
            cursor = end
            d += _ONE_DAY

    def warning_at(self, start: datetime, due: datetime, share: float) -> datetime:
        """The instant (UTC) at which ``share`` (0-1) of the working time between
        ``start`` and ``due`` has elapsed: when the deadline warning goes out."""
        if not 0 <= share <= 1:
            raise ValueError(f"share must be between 0 and 1, got {share}")
        return self.add_working_time(start, self.working_time_between(start, due) * share)

    def resume(self, paused_at: datetime, resumed_at: datetime, due: datetime) -> datetime:
        """The new due instant (UTC) after a clock paused at ``paused_at`` resumes at
        ``resumed_at``: the working time that was left at the pause, counted again
        from the resume."""
        return self.add_working_time(resumed_at, self.working_time_between(paused_at, due))
