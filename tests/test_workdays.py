"""Working-day arithmetic: weekends, Indonesian public holidays, a region's days off,
the three Indonesian time zones, pauses; plus properties checked by hypothesis."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awasi.workdays import WorkCalendar, public_holidays

WIB, WITA, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Makassar"), ZoneInfo("Asia/Jayapura")
H = timedelta(hours=1)
D = timedelta(days=1)


def at(tz: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=tz)  # type: ignore[misc]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def jakarta() -> WorkCalendar:
    return WorkCalendar(timezone="Asia/Jakarta", days_off=frozenset(), country="ID")


# --- days ---------------------------------------------------------------------------

def test_weekends_are_not_working_days(jakarta: WorkCalendar) -> None:
    assert jakarta.is_working_day(date(2026, 11, 20))  # Friday
    assert not jakarta.is_working_day(date(2026, 11, 21))  # Saturday
    assert not jakarta.is_working_day(date(2026, 11, 22))  # Sunday
    assert jakarta.is_working_day(date(2026, 11, 23))  # Monday


def test_indonesian_public_holidays(jakarta: WorkCalendar) -> None:
    assert not jakarta.is_working_day(date(2026, 8, 17))  # Independence Day, a Monday
    assert not jakarta.is_working_day(date(2026, 12, 25))  # Christmas, a Friday
    assert not jakarta.is_working_day(date(2026, 6, 1))  # Pancasila Day, a Monday
    assert jakarta.is_working_day(date(2026, 8, 18))
    assert date(2026, 8, 17) in public_holidays("ID", 2026)


def test_holidays_are_cached_per_year(jakarta: WorkCalendar) -> None:
    public_holidays.cache_clear()
    jakarta.is_working_day(date(2030, 3, 4))
    jakarta.is_working_day(date(2030, 9, 4))
    info = public_holidays.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert public_holidays("ID", 2030) is public_holidays("ID", 2030)


def test_region_days_off() -> None:
    medan = WorkCalendar("Asia/Jakarta", days_off={date(2026, 12, 24)},
                         annual_days_off={(7, 1)})
    assert not medan.is_working_day(date(2026, 12, 24))  # a Thursday
    assert medan.is_working_day(date(2027, 12, 24))  # one-off: only in 2026
    assert not medan.is_working_day(date(2026, 7, 1))  # anniversary, a Wednesday
    assert not medan.is_working_day(date(2027, 7, 1))  # every year
    plain = WorkCalendar("Asia/Jakarta")
    assert plain.is_working_day(date(2026, 12, 24)) and plain.is_working_day(date(2026, 7, 1))
    # A deadline steps over the day off.
    start = at(WIB, 2026, 6, 30, 9)  # Tuesday
    assert medan.add_working_days(start, 1) == at(WIB, 2026, 7, 3).astimezone(UTC)
    assert plain.add_working_days(start, 1) == at(WIB, 2026, 7, 2).astimezone(UTC)


def test_a_datetime_counts_by_its_local_date(jakarta: WorkCalendar) -> None:
    # Saturday 00:30 WIB is still Friday in UTC: the region's own date decides.
    saturday_early = at(WIB, 2026, 11, 28, 0, 30)
    assert saturday_early.astimezone(UTC).weekday() == 4
    assert jakarta.is_working_day(saturday_early) is False
    assert jakarta.is_working_day(at(WIB, 2026, 11, 27, 23, 30)) is True


def test_results_are_in_utc_and_the_calendar_names_its_zone(jakarta: WorkCalendar) -> None:
    start = at(WIB, 2026, 11, 23, 9)
    for result in (jakarta.add_working_days(start, 0), jakarta.add_working_days(start, 1),
                   jakarta.add_working_time(start, H), jakarta.add_working_time(start, 0 * H)):
        assert result.tzinfo is UTC
    assert jakarta.add_working_days(start, 0) == start
    assert "Asia/Jakarta" in repr(jakarta) and jakarta.timezone == "Asia/Jakarta"


def test_unknown_zone_and_naive_datetimes(jakarta: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="time zone"):
        WorkCalendar("Asia/Sorong")
    naive = datetime(2026, 11, 23, 9)  # noqa: DTZ001 - the point of the test
    aware = at(WIB, 2026, 11, 23, 9)
    # Each refusal names the argument at fault.
    with pytest.raises(ValueError, match="^start must be a timezone-aware datetime, got naive"):
        jakarta.add_working_days(naive, 1)
    with pytest.raises(ValueError, match="^a must be a timezone-aware datetime, got naive"):
        jakarta.working_time_between(naive, aware)
    with pytest.raises(ValueError, match="^b must be a timezone-aware datetime, got naive"):
        jakarta.working_time_between(aware, naive)
    with pytest.raises(ValueError, match="^start must be a timezone-aware datetime, got naive"):
        jakarta.add_working_time(naive, H)
    with pytest.raises(ValueError, match="^instant must be a timezone-aware datetime"):
        jakarta.local_date(naive)
    with pytest.raises(ValueError, match="naive"):
        jakarta.warning_at(naive, aware, 0.8)
    with pytest.raises(ValueError, match="negative"):
        jakarta.add_working_days(aware, -1)
    with pytest.raises(ValueError, match="negative"):
        jakarta.add_working_time(aware, -H)


# --- add_working_days ---------------------------------------------------------------

def test_sorong_friday_night() -> None:
    sorong = WorkCalendar(timezone="Asia/Jayapura", days_off=frozenset(), country="ID")
    start = at(WIT, 2026, 11, 20, 23, 30)  # Friday 23:30 WIT
    due = sorong.add_working_days(start, 5)
    assert due == at(WIT, 2026, 11, 28, 0, 0)  # the following Friday 24:00 WIT
    assert due == utc(2026, 11, 27, 15, 0)
    assert due.tzinfo is UTC


def test_start_day_never_counts(jakarta: WorkCalendar) -> None:
    monday_early = at(WIB, 2026, 11, 23, 0, 1)
    monday_late = at(WIB, 2026, 11, 23, 23, 59)
    assert jakarta.add_working_days(monday_early, 1) == at(WIB, 2026, 11, 25).astimezone(UTC)
    assert jakarta.add_working_days(monday_late, 1) == at(WIB, 2026, 11, 25).astimezone(UTC)
    saturday = at(WIB, 2026, 11, 21, 10)
    assert jakarta.add_working_days(saturday, 1) == at(WIB, 2026, 11, 24).astimezone(UTC)
    assert jakarta.add_working_days(monday_early, 0) == monday_early


def test_add_working_days_over_holidays(jakarta: WorkCalendar) -> None:
    # Friday 14 August 2026: Monday 17th is Independence Day.
    due = jakarta.add_working_days(at(WIB, 2026, 8, 14, 10), 1)
    assert due == at(WIB, 2026, 8, 19).astimezone(UTC)  # end of Tuesday 18th
    # Christmas Friday 2026 and the weekend: 1 working day from Thursday 24th is Monday.
    assert jakarta.add_working_days(at(WIB, 2026, 12, 24, 10), 1) == (
        at(WIB, 2026, 12, 29).astimezone(UTC))
    # 60 working days (an investigation) from 2 November 2026 with Christmas inside:
    # 43 weekdays to 31 December less one holiday, then 2027 from 4 January (1 January
    # is New Year's Day).
    due = jakarta.add_working_days(at(WIB, 2026, 11, 2, 9), 60)
    weekdays = [date(2026, 11, 2) + i * D for i in range(1, 120)]
    working = [d for d in weekdays if jakarta.is_working_day(d)]
    assert due == jakarta.day_end(working[59])


def test_three_time_zones_same_instant() -> None:
    # Thursday 19 November 2026 16:30 UTC is Thursday 23:30 WIB, but already Friday in
    # WITA (00:30) and WIT (01:30): the local date decides which day is "today".
    instant = utc(2026, 11, 19, 16, 30)
    wib = WorkCalendar("Asia/Jakarta").add_working_days(instant, 1)
    wita = WorkCalendar("Asia/Makassar").add_working_days(instant, 1)
    wit = WorkCalendar("Asia/Jayapura").add_working_days(instant, 1)
    assert wib == at(WIB, 2026, 11, 21).astimezone(UTC) == utc(2026, 11, 20, 17)
    assert wita == at(WITA, 2026, 11, 24).astimezone(UTC) == utc(2026, 11, 23, 16)
    assert wit == at(WIT, 2026, 11, 24).astimezone(UTC) == utc(2026, 11, 23, 15)


def test_pontianak_is_wib() -> None:
    pky = WorkCalendar("Asia/Pontianak")
    assert pky.day_start(date(2026, 11, 23)) == utc(2026, 11, 22, 17)


# --- working time -------------------------------------------------------------------

def test_working_time_between_skips_the_weekend(jakarta: WorkCalendar) -> None:
    friday_noon, monday_noon = at(WIB, 2026, 11, 20, 12), at(WIB, 2026, 11, 23, 12)
    assert jakarta.working_time_between(friday_noon, monday_noon) == 24 * H
    assert jakarta.working_time_between(monday_noon, friday_noon) == timedelta(0)
    assert jakarta.working_time_between(friday_noon, friday_noon) == timedelta(0)
    saturday, sunday = at(WIB, 2026, 11, 21, 1), at(WIB, 2026, 11, 22, 23)
    assert jakarta.working_time_between(saturday, sunday) == timedelta(0)
    # Across the Independence Day long weekend.
    assert jakarta.working_time_between(at(WIB, 2026, 8, 14, 12), at(WIB, 2026, 8, 18, 12)) == (
        24 * H)


def test_working_time_uses_local_days() -> None:
    # 17:00 to 19:00 UTC on Friday is Friday 24:00-02:00 WIB (Saturday after midnight):
    # one hour of Friday in WITA, none in WIB.
    a, b = utc(2026, 11, 20, 16), utc(2026, 11, 20, 18)
    assert WorkCalendar("Asia/Jakarta").working_time_between(a, b) == H
    assert WorkCalendar("Asia/Makassar").working_time_between(a, b) == timedelta(0)
    assert WorkCalendar("Asia/Jayapura").working_time_between(a, b) == timedelta(0)
    assert WorkCalendar("UTC").working_time_between(a, b) == 2 * H


def test_add_working_time(jakarta: WorkCalendar) -> None:
    friday_noon = at(WIB, 2026, 11, 20, 12)
    assert jakarta.add_working_time(friday_noon, 13 * H) == at(WIB, 2026, 11, 23, 1)
    # Ending a working day exactly gives its closing midnight, not the next Monday.
    assert jakarta.add_working_time(friday_noon, 12 * H) == at(WIB, 2026, 11, 21)
    # Starting inside a weekend: the clock starts on Monday.
    assert jakarta.add_working_time(at(WIB, 2026, 11, 21, 15), 2 * H) == (
        at(WIB, 2026, 11, 23, 2))
    assert jakarta.add_working_time(friday_noon, timedelta(0)) == friday_noon
    assert jakarta.add_working_time(friday_noon, H).tzinfo is UTC


def test_warning_at(jakarta: WorkCalendar) -> None:
    # Wednesday 00:00 to the next Wednesday 00:00: five working days (Wed, Thu, Fri,
    # Mon, Tue). 80% of them is four days: Tuesday 00:00.
    start, due = at(WIB, 2026, 11, 18), at(WIB, 2026, 11, 25)
    assert jakarta.working_time_between(start, due) == 5 * D
    assert jakarta.warning_at(start, due, 0.8) == at(WIB, 2026, 11, 24)
    assert jakarta.warning_at(start, due, 1.0) == due
    assert jakarta.warning_at(start, due, 0.0) == start
    with pytest.raises(ValueError, match="share"):
        jakarta.warning_at(start, due, 1.2)


def test_sorong_warning_on_the_friday_case() -> None:
    sorong = WorkCalendar("Asia/Jayapura")
    start = at(WIT, 2026, 11, 20, 23, 30)
    due = sorong.add_working_days(start, 5)
    # 30 minutes of Friday plus five full days: 120.5 h; 80% is 96.4 h of working time.
    assert sorong.working_time_between(start, due) == 120 * H + 30 * timedelta(minutes=1)
    # Friday's last 30 minutes, the weekend skipped, then 95 h 54 min from Monday.
    assert sorong.warning_at(start, due, 0.8) == at(WIT, 2026, 11, 26, 23, 54)


def test_pause_and_resume(jakarta: WorkCalendar) -> None:
    # Due at the end of Friday 27 November; paused Wednesday 12:00 when the agency
    # asked the citizen for information; resumed Monday 30 November 09:00.
    due = at(WIB, 2026, 11, 28)
    paused, resumed = at(WIB, 2026, 11, 25, 12), at(WIB, 2026, 11, 30, 9)
    left = jakarta.working_time_between(paused, due)
    assert left == 60 * H  # Wednesday 12 h, Thursday, Friday
    new_due = jakarta.add_working_time(resumed, left)
    # Monday 15 h, Tuesday 24 h, then 21 h of Wednesday.
    assert new_due == at(WIB, 2026, 12, 2, 21)
    assert jakarta.resume(paused, resumed, due) == new_due
    assert jakarta.working_time_between(resumed, new_due) == left


def test_pause_over_a_holiday(jakarta: WorkCalendar) -> None:
    # Due at the end of Friday 14 August 2026, paused at 16:00 with 8 working hours
    # left, resumed at 20:00: 4 h of Friday, then the weekend and Monday 17th
    # (Independence Day) do not count, so the last 4 h fall on Tuesday.
    paused = at(WIB, 2026, 8, 14, 16)
    due = jakarta.add_working_time(paused, 8 * H)
    assert due == at(WIB, 2026, 8, 15, 0)  # Friday's last 8 h end at its midnight
    resumed = at(WIB, 2026, 8, 14, 20)
    assert jakarta.resume(paused, resumed, due) == at(WIB, 2026, 8, 18, 4)


# --- properties ---------------------------------------------------------------------

ZONES = ("Asia/Jakarta", "Asia/Pontianak", "Asia/Makassar", "Asia/Jayapura")
CALENDARS = [WorkCalendar(z, days_off={date(2026, 12, 24), date(2027, 3, 3)},
                          annual_days_off={(7, 1)}) for z in ZONES]
CALENDARS += [WorkCalendar(z) for z in ZONES]

instants = st.datetimes(min_value=datetime(2025, 6, 1), max_value=datetime(2028, 6, 1),  # noqa: DTZ001
                        timezones=st.just(UTC))
calendars = st.sampled_from(CALENDARS)
amounts = st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=120))
fast = settings(max_examples=150, deadline=None)


def _inside_non_working_day(cal: WorkCalendar, instant: datetime) -> bool:
    """True if ``instant`` falls inside a non-working local day, not at its start."""
    d = cal.local_date(instant)
    return not cal.is_working_day(d) and instant != cal.day_start(d)


@fast
@given(calendars, instants, instants)
def test_round_trip_lands_on_or_before_b_at_the_same_working_instant(
    cal: WorkCalendar, x: datetime, y: datetime
) -> None:
    a, b = min(x, y), max(x, y)
    worked = cal.working_time_between(a, b)
    back = cal.add_working_time(a, worked)
    assert a <= back <= b
    assert cal.working_time_between(a, back) == worked
    # Nothing more is worked between the result and b: only non-working time is left.
    assert cal.working_time_between(back, b) == timedelta(0)


@fast
@given(calendars, instants, amounts)
def test_add_working_time_then_measure(cal: WorkCalendar, a: datetime, amount: timedelta) -> None:
    end = cal.add_working_time(a, amount)
    assert end > a and end.tzinfo is UTC
    assert cal.working_time_between(a, end) == amount
    assert not _inside_non_working_day(cal, end)


@fast
@given(calendars, instants, st.integers(min_value=1, max_value=70))
def test_add_working_days_ends_a_working_day(cal: WorkCalendar, a: datetime, days: int) -> None:
    due = cal.add_working_days(a, days)
    last = cal.local_date(due) - D
    assert due == cal.day_end(last)  # a local midnight
    assert cal.is_working_day(last)
    assert not _inside_non_working_day(cal, due)
    between = [cal.local_date(a) + i * D for i in range(1, (last - cal.local_date(a)).days + 1)]
    assert sum(cal.is_working_day(d) for d in between) == days


@fast
@given(calendars, instants, instants, instants)
def test_working_time_is_additive(cal: WorkCalendar, x: datetime, y: datetime,
                                  z: datetime) -> None:
    a, b, c = sorted((x, y, z))
    assert (cal.working_time_between(a, b) + cal.working_time_between(b, c)
            == cal.working_time_between(a, c))


@fast
@given(calendars, instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
       st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)), amounts)
def test_pause_keeps_the_working_time_left(cal: WorkCalendar, start: datetime,
                                           until_pause: timedelta, pause: timedelta,
                                           budget: timedelta) -> None:
    due = cal.add_working_time(start, budget)
    paused = start + until_pause
    resumed = paused + pause
    new_due = cal.resume(paused, resumed, due)
    left = cal.working_time_between(paused, due)
    assert cal.working_time_between(resumed, new_due) == left
    assert new_due >= resumed
    if left:
        assert not _inside_non_working_day(cal, new_due)
    # Working time before the pause plus after the resume is never more than the budget.
    assert (cal.working_time_between(start, min(paused, due)) + left) == budget


@fast
@given(calendars, instants, instants, st.floats(min_value=0, max_value=1))
def test_warning_falls_between_start_and_due(cal: WorkCalendar, x: datetime, y: datetime,
                                             share: float) -> None:
    start, due = min(x, y), max(x, y)
    warn = cal.warning_at(start, due, share)
    assert start <= warn <= due
