"""The one format for dates and times people read (``awasi.timefmt``): the region's own
zone, the reader's language, never raw ISO 8601."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from awasi.timefmt import format_date, format_datetime, jinja_filters

AT = datetime(2026, 12, 2, 2, 15, tzinfo=UTC)  # 09:15 in Jakarta


@pytest.mark.parametrize(("tz", "locale", "expected"), [
    ("Asia/Jakarta", "id", "2 Des 2026, 09.15 WIB"),
    ("Asia/Jakarta", "en", "2 Dec 2026, 09:15 WIB"),
    ("Asia/Pontianak", "id", "2 Des 2026, 09.15 WIB"),   # Palangka Raya
    ("Asia/Makassar", "id", "2 Des 2026, 10.15 WITA"),
    ("Asia/Jayapura", "en", "2 Dec 2026, 11:15 WIT"),     # Sorong
    (None, "id", "2 Des 2026, 09.15 WIB"),                # no region: Jakarta
])
def test_local_time_in_the_readers_language(tz: str | None, locale: str, expected: str) -> None:
    assert format_datetime(AT, tz, locale) == expected


def test_iso_text_any_offset_and_the_day_alone() -> None:
    assert format_datetime("2026-12-02T02:15:00Z", "Asia/Jakarta", "id") == \
        "2 Des 2026, 09.15 WIB"
    plus9 = AT.astimezone(timezone(timedelta(hours=9))).isoformat()
    assert format_datetime(plus9, "Asia/Jakarta", "en") == "2 Dec 2026, 09:15 WIB"
    # Late evening in UTC is the next day in Sorong.
    assert format_date("2026-12-31T20:00:00+00:00", "Asia/Jayapura", "id") == "1 Jan 2027"
    assert format_date(date(2026, 8, 17), None, "id") == "17 Agu 2026"
    assert format_datetime(date(2026, 5, 1), None, "en") == "1 May 2026"


def test_nothing_and_naive_times() -> None:
    assert format_datetime(None, "Asia/Jakarta", "id") == ""
    assert format_datetime(None, "Asia/Jakarta", "id", empty="-") == "-"
    with pytest.raises(ValueError, match="naive"):
        format_datetime(datetime(2026, 12, 2, 9, 15), "Asia/Jakarta", "id")  # noqa: DTZ001


def test_template_filters() -> None:
    f = jinja_filters()
    assert f["when"](AT, "Asia/Jayapura", "id") == "2 Des 2026, 11.15 WIT"
    assert f["day"](AT, "Asia/Jakarta", "en") == "2 Dec 2026"
