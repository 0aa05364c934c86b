"""Property-based test of the bot (hypothesis): whatever a chat sends, in whatever
order (text, commands with and without arguments, stale or forged buttons, locations,
stickers, edits, updates of unknown types, repeated update ids), the webhook accepts
it, the bot never fails (its error handler is never reached), never calls a Bot API
method the stand-in does not know, and never leaves a private-chat message unanswered."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from awasi.settings import Settings
from tests.support.botapi import BotApi, BotClient, bot_settings, running_bot

CHAT = 424242
USER = {"id": CHAT, "is_bot": False, "first_name": "Uji", "language_code": "id"}
PRIVATE = {"id": CHAT, "type": "private", "first_name": "Uji"}

COMMANDS = ["/start", "/lapor", "/status", "/batal", "/bantuan", "/help", "/cancel", "/x"]
BUTTONS = ["r:MDN", "r:SRG", "r:XXX", "c:sampah", "c:asn-pungli", "c:nope", "skip", "done",
           "pv:named", "pv:confidential", "pv:anonymous", "pv:bogus", "ok", "edit", "e:desc",
           "rate:5", "rate:1", "rate:9", "dispute", "", ":", "r:", "💥"]

texts = st.one_of(
    st.text(min_size=1, max_size=300),
    st.sampled_from(COMMANDS),
    st.builds(lambda c, a: f"{c} {a}", st.sampled_from(COMMANDS), st.text(max_size=40)),
    st.sampled_from(["Medan", "MDN-7KQ4-X2PA", "Siti Rahmawati", "+62 812 5550 1234",
                     "Sampah menumpuk di pinggir jalan selama seminggu."]),
)


def _message(mid: int, **fields: Any) -> dict[str, Any]:
    return {"message_id": mid, "date": int(time.time()), "chat": PRIVATE, "from": USER,
            **fields}


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    mid = draw(st.integers(1, 10**6))
    kind = draw(st.sampled_from(["text", "text", "text", "button", "button", "location",
                                 "sticker", "edited", "unknown", "channel"]))
    if kind == "text":
        text = draw(texts)
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            fields["entities"] = [{"type": "bot_command", "offset": 0,
                                   "length": len(text.split()[0])}]
        return {"message": _message(mid, **fields)}
    if kind == "button":
        data = draw(st.one_of(st.sampled_from(BUTTONS), st.text(max_size=64)))
        return {"callback_query": {"id": f"cq{mid}", "from": USER, "chat_instance": "ci",
                                   "data": data,
                                   "message": {"message_id": 1, "date": 1, "chat": PRIVATE,
                                               "text": "..."}}}
    if kind == "location":
        return {"message": _message(mid, location={
            "latitude": draw(st.floats(-90, 90)), "longitude": draw(st.floats(-180, 180))})}
    if kind == "sticker":
        return {"message": _message(mid, sticker={
            "file_id": "stk", "file_unique_id": "ustk", "type": "regular", "width": 512,
            "height": 512, "is_animated": False, "is_video": False})}
    if kind == "edited":
        return {"edited_message": {**_message(mid, text=draw(texts)), "edit_date": 2}}
    if kind == "unknown":
        return {draw(st.sampled_from(["future_type", "business_message_x"])): {"x": 1}}
    return {"channel_post": {"message_id": mid, "date": 1, "text": draw(texts),
                             "chat": {"id": -100777, "type": "channel", "title": "C"}}}


@pytest.fixture
async def bot(settings: Settings, api: BotApi) -> AsyncIterator[BotClient]:
    async with running_bot(bot_settings(settings, api), api) as b:
        yield b


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The bot's and intake's own errors; not a client library's complaint about a
        # broker another test already stopped.
        if record.name.startswith(("services.", "awasi.", "telegram")):
            self.records.append(record)


_update_ids = iter(range(5_000_000, 10**9))


def answers(api: BotApi, query_id: str) -> list[Any]:
    """The bot's answerCallbackQuery calls for one button press."""
    return [c for c in api.calls if c.method == "answerCallbackQuery"
            and c.params.get("callback_query_id") == query_id]


@pytest.mark.slow
# A failing example's repr includes the stand-in's whole call log: long, but wanted.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@given(sequence=st.lists(updates(), min_size=1, max_size=10))
@hsettings(max_examples=30, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
async def test_bot_survives_arbitrary_updates(bot: BotClient, api: BotApi,
                                              sequence: list[dict[str, Any]]) -> None:
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    try:
        for body in sequence:
            update = {"update_id": next(_update_ids), **body}
            query_id = None
            if "callback_query" in body:
                # A fresh id per button press: the answer checked below is this press's
                # own, not any answer an earlier press left in the shared call log.
                query_id = f"cq-{next(_update_ids)}"
                update["callback_query"] = {**body["callback_query"], "id": query_id}
            before = len(api.sent(CHAT))
            assert await bot.post(update) == 200
            if "message" in body and (body["message"].get("text") or
                                      body["message"].get("sticker")):
                # A private-chat message always gets an answer, never silence.
                await api.wait_sent(CHAT, before + 1, within=10)
            if query_id is not None:
                await api.wait_for(lambda _, q=query_id: len(answers(api, q)) >= 1,
                                   within=10, what=f"the answer to button press {query_id}")
            # A repeated update id changes nothing.
            sent = len(api.sent(CHAT))
            assert await bot.post(update) == 200
            assert len(api.sent(CHAT)) == sent
            if query_id is not None:
                assert len(answers(api, query_id)) == 1, "a button press answered twice"
        assert not errors.records, [r.getMessage() for r in errors.records]
        assert not api.unexpected, api.unexpected
    finally:
        logging.getLogger().removeHandler(errors)
