"""Dates and times as a citizen or an officer reads them: in the region's own time
zone, in their language, never as raw ISO 8601.

``2 Des 2026, 09.15 WIB`` (Bahasa Indonesia: a full stop between hours and minutes,
as Indonesian writes it) and ``2 Dec 2026, 09:15 WIB`` (English). The month names
come from Babel's CLDR data; the zone is the zone's own abbreviation (WIB, WITA,
WIT), which Indonesians use in both languages (CLDR's English would say "+0700").

This is the one formatting function: intake's pages and e-mail, the bot, the desk,
the panel and the public dashboard all call it (or its Jinja filters).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_date

DEFAULT_TZ = "Asia/Jakarta"
_BABEL_LOCALE = {"id": "id_ID", "en": "en_GB"}


def _parse(value: datetime | date | str | None) -> datetime | date | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def _local(value: datetime, tz: str | None) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: every time in Awasi is timezone-aware")
    return value.astimezone(ZoneInfo(tz or DEFAULT_TZ))


def format_datetime(value: datetime | str | None, tz: str | None, locale: str,
                    *, empty: str = "") -> str:
    """``value`` (aware datetime or ISO 8601 text) in zone ``tz`` (an IANA name such as
    ``Asia/Jayapura``; Jakarta when None) and ``locale`` (``id`` or ``en``).
    ``empty`` for None. Raises ``ValueError`` for a naive datetime or bad ISO text."""
    parsed = _parse(value)
    if parsed is None:
        return empty
    if not isinstance(parsed, datetime):
        return format_date(parsed, tz, locale, empty=empty)
    local = _local(parsed, tz)
    day = _babel_date(local.date(), format="d MMM yyyy", locale=_BABEL_LOCALE.get(locale, "id_ID"))
    clock = f"{local:%H.%M}" if locale != "en" else f"{local:%H:%M}"
    return f"{day}, {clock} {local.tzname()}"


def format_date(value: datetime | date | str | None, tz: str | None, locale: str,
                *, empty: str = "") -> str:
    """The day alone (``2 Des 2026``), in zone ``tz`` when ``value`` has a time."""
    parsed = _parse(value)
    if parsed is None:
        return empty
    if isinstance(parsed, datetime):
        parsed = _local(parsed, tz).date()
    return _babel_date(parsed, format="d MMM yyyy", locale=_BABEL_LOCALE.get(locale, "id_ID"))


def jinja_filters() -> dict[str, Any]:
    """``{{ at | when(tz, lang) }}`` and ``{{ at | day(tz, lang) }}`` for templates."""
    return {
        "when": lambda v, tz=None, lang="id": format_datetime(v, tz, lang),
        "day": lambda v, tz=None, lang="id": format_date(v, tz, lang),
    }
