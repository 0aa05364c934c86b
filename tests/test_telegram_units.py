"""Unit checks of the Telegram bot's pieces that need no server: the message
catalogs are complete, which events are news for the citizen, the retry schedule."""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from awasi.events import payloads as p
from awasi.events.envelope import Envelope
from services.intake.notify import citizen_news
from services.intake.telegram import texts
from services.intake.telegram.sender import backoff, retry_after_seconds
from services.intake.telegram.texts import LOCALE_DIR, user_locale

PACKAGE = Path(texts.__file__).resolve().parent


def msgids() -> set[str]:
    """Every literal passed to t(...) / self.t(...) / _(...) in the bot's code."""
    found: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", None)
            if name not in ("t", "_"):
                continue
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
                    break
    return found


@pytest.mark.parametrize("locale", ["id", "en"])
def test_catalog_translates_every_message(locale: str) -> None:
    with (LOCALE_DIR / f"{locale}.po").open("rb") as f:
        catalog = read_po(f, locale=locale)
    translated = {m.id: m.string for m in catalog if m.id and m.string}
    missing = sorted(msgids() - set(translated))
    assert not missing, missing
    # Placeholders survive translation.
    for msgid, text in translated.items():
        for name in ("code", "agency", "question", "secret", "rating"):
            assert (f"%({name})s" in msgid) == (f"%({name})s" in text), (msgid, text)


def test_indonesian_is_the_default_and_english_for_english_speakers() -> None:
    assert user_locale(None) == "id"
    assert user_locale("id") == "id"
    assert user_locale("en-GB") == "en"
    assert user_locale("de") == "id"


def env(payload: p.Payload) -> Envelope:
    return Envelope.build(payload, complaint_id=str(uuid.uuid4()), producer="router")


def test_which_events_are_news_for_the_citizen() -> None:
    now = datetime.now(UTC)
    assert citizen_news(env(p.DeadlineWarning(kind="resolve", due_at=now))) is None
    assert citizen_news(env(p.FindingRecorded(outcome="inconclusive", recommendation="x",
                                              published=False))) is None
    assert citizen_news(env(p.FindingRecorded(outcome="inconclusive", recommendation="x",
                                              published=True))) == {
        "outcome": "inconclusive", "recommendation": "x"}
    transferred = citizen_news(env(p.TicketTransferred(
        from_agency="A", agency="B", reason="internal reason", deadlines=p.Deadlines())))
    assert transferred == {"agency": "B"}  # the reason is the agencies' business
    assert citizen_news(env(p.TicketInfoRequested(agency="A", question="Q?",
                                                  paused_at=now))) == {
        "agency": "A", "question": "Q?"}


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff(50) == timedelta(seconds=600)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_retry_after_in_seconds() -> None:
    from telegram.error import RetryAfter

    assert retry_after_seconds(RetryAfter(7)) == 7.0
    assert retry_after_seconds(RetryAfter(timedelta(seconds=3))) == 3.0
