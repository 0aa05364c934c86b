"""The Telegram webhook is durable and fair, and the bot token never reaches a log.

- An update the webhook answered 200 is stored: the app stopped before processing
  it, the next app processes it, and the citizen gets the answer exactly once.
- One slow chat does not hold up the others; a chat's own updates stay in order.
- At DEBUG level for every logger (ours, httpx, httpcore, python-telegram-bot), a
  whole conversation logs nothing that contains the token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from awasi.jsonlog import JsonFormatter
from awasi.logredact import REDACTED
from awasi.settings import Settings
from services.intake.telegram import store
from services.intake.telegram.bot import INBOX, SECRET_HEADER
from services.intake.telegram.inbox import MAX_WAITING, lanes
from tests.support.botapi import (
    JPEG,
    SECRET,
    TOKEN,
    BotApi,
    Updates,
    bot_settings,
    running_bot,
    running_botapi,
)
from tests.support.services import ServiceProcess

# What must not appear: the whole token, and its secret half alone.
SECRETS = (TOKEN, TOKEN.split(":", 1)[1])


@pytest.fixture
async def api() -> AsyncIterator[BotApi]:
    async with running_botapi(TOKEN) as stand_in:
        yield stand_in
        stand_in.assert_clean()


async def pending(bot: object, update_id: int) -> bool:
    return bool(await bot.pool.fetchval(  # type: ignore[attr-defined]
        "SELECT processed_at IS NULL FROM intake.telegram_inbox WHERE update_id = $1",
        update_id))


# --- durable ----------------------------------------------------------------------------

async def test_an_accepted_update_survives_a_stop_before_processing(
        settings: Settings, api: BotApi) -> None:
    s = bot_settings(settings, api)
    citizen = Updates(5200, language_code="id")
    waiting = citizen.text("/start")
    async with running_bot(s, api) as bot:
        lanes = bot.client.server.app[INBOX].concurrency
        assert lanes == 2  # the tests' pool of 5 connections
        busy = [Updates(5100 + i, language_code="en") for i in range(lanes)]
        # Every worker lane busy with a chat whose answer is slow ...
        for u in busy:
            api.slow[u.chat_id] = 2.0
            assert await bot.post(u.text("/bantuan"), wait=False) == 200
        await api.wait_for(lambda _: all(api.sent(u.chat_id) for u in busy), within=15,
                           what="every lane busy")
        # ... so the citizen's update is accepted (stored) but not yet processed when
        # the app stops.
        assert await bot.post(waiting, wait=False) == 200
        assert await pending(bot, waiting["update_id"])
    assert api.sent(citizen.chat_id) == []
    api.slow.clear()
    async with running_bot(s, api) as bot:
        answer = await api.wait_sent(citizen.chat_id, 1, within=15)
        assert "Selamat datang" in answer[0].text
        await bot.processed(waiting["update_id"])
        # Telegram, never having seen our 200 arrive, sends it again: stored once,
        # answered once.
        assert await bot.post(waiting) == 200
        await asyncio.sleep(1.0)
        assert len(api.sent(citizen.chat_id)) == 1
        # The busy chats' updates were being handled when the app stopped (their
        # answers went out): they are not handled a second time.
        for u in busy:
            assert len(api.sent(u.chat_id)) == 1
        assert await bot.pool.fetchval(
            "SELECT count(*) FROM intake.telegram_inbox WHERE processed_at IS NULL") == 0
        # Processed updates keep their id (redelivery), not the citizen's words.
        assert await bot.pool.fetchval(
            "SELECT count(*) FROM intake.telegram_inbox WHERE payload IS NOT NULL") == 0


@pytest.mark.slow
async def test_an_accepted_update_survives_sigkill(database_url: str, broker: Any,
                                                   api: BotApi) -> None:
    """A real ``awasi serve intake`` killed with SIGKILL while the update it answered
    200 for waits behind busy lanes: the next process answers it, once."""
    env = {"AWASI_TELEGRAM_TOKEN": TOKEN, "AWASI_TELEGRAM_WEBHOOK_SECRET": SECRET,
           "AWASI_TELEGRAM_API_URL": api.url}
    citizen = Updates(5250, language_code="en")
    waiting = citizen.text("/start")

    async def post(proc: ServiceProcess, update: dict[str, Any]) -> None:
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.post(f"{proc.url}/telegram/webhook", json=update,
                                        headers={SECRET_HEADER: SECRET}) as r:
                    if r.status != 503:  # 503 while the bot is still starting
                        assert r.status == 200
                        return
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)

    first = ServiceProcess("intake", database_url, broker.bootstrap, extra_env=env)
    first.start()
    try:
        await first.wait_healthy()
        busy = [Updates(5150 + i, language_code="en") for i in range(lanes(5))]
        for u in busy:
            api.slow[u.chat_id] = 30.0
            await post(first, u.text("/bantuan"))
        await api.wait_for(lambda _: all(api.sent(u.chat_id) for u in busy), within=20,
                           what="every lane busy")
        await post(first, waiting)
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT processed_at IS NULL FROM intake.telegram_inbox"
                                       " WHERE update_id = $1", waiting["update_id"])
        finally:
            await conn.close()
    finally:
        first.kill()
    assert api.sent(citizen.chat_id) == []
    api.slow.clear()
    second = ServiceProcess("intake", database_url, broker.bootstrap, extra_env=env)
    second.start()
    try:
        await second.wait_healthy()
        sent = await api.wait_sent(citizen.chat_id, 1, within=30)
        assert "Welcome to Awasi" in sent[0].text
        await post(second, waiting)  # Telegram's retry of the call we "never answered"
        await asyncio.sleep(1.5)
        assert len(api.sent(citizen.chat_id)) == 1
    finally:
        second.stop()


async def test_processed_updates_are_forgotten_after_a_week_waiting_ones_never(
        settings: Settings, api: BotApi) -> None:
    async with running_bot(bot_settings(settings, api), api) as bot:
        # Both stored long ago (an update older than the lease is claimed at once, so
        # the waiting one is kept leased by a worker that "is still at it").
        await bot.pool.execute(
            "INSERT INTO intake.telegram_inbox (update_id, chat_id, payload, received_at,"
            " processed_at, leased_until) VALUES"
            " (1, 7, NULL, now() - interval '9 days', now() - interval '8 days', NULL),"
            " (2, 8, '{}', now() - interval '9 days', NULL, now() + interval '1 hour')")
        await store.purge(bot.pool)
        assert [r["update_id"] for r in await bot.pool.fetch(
            "SELECT update_id FROM intake.telegram_inbox WHERE update_id < 3")] == [2]


# --- fair -------------------------------------------------------------------------------

async def test_a_slow_chat_does_not_hold_up_the_others(settings: Settings,
                                                       api: BotApi) -> None:
    slow, quick = Updates(5301, language_code="en"), Updates(5302, language_code="en")
    api.slow[slow.chat_id] = 1.5
    async with running_bot(bot_settings(settings, api), api) as bot:
        mine = [slow.text("/start"), slow.text("/bantuan"), slow.text("/lapor")]
        for u in mine:
            assert await bot.post(u, wait=False) == 200
        t0 = time.monotonic()
        # The quick chat is answered (three times over) while the slow one still waits
        # for its first answer.
        for text in ("/start", "/bantuan", "/status"):
            await bot.say(quick, quick.text(text))
        assert time.monotonic() - t0 < 4.5  # the slow chat alone needs 4.5 s
        assert await pending(bot, mine[-1]["update_id"])
        # The slow chat's own updates were handled one at a time, in order.
        sent = await api.wait_sent(slow.chat_id, 3, within=20)
        assert "Welcome to Awasi" in sent[0].text
        assert "Commands:" in sent[1].text
        assert "Which city or area" in sent[2].text
        assert await bot.chat_state(slow.chat_id) == "region"


async def test_a_flooding_chat_is_cut_off_and_the_others_are_served(
        settings: Settings, api: BotApi) -> None:
    flood, other = Updates(5401, language_code="en"), Updates(5402, language_code="en")
    api.slow[flood.chat_id] = 5.0
    async with running_bot(bot_settings(settings, api), api) as bot:
        for _ in range(MAX_WAITING + 5):
            assert await bot.post(flood.text("/bantuan"), wait=False) == 200
        assert await bot.pool.fetchval(
            "SELECT count(*) FROM intake.telegram_inbox WHERE outcome = 'flood'"
            " AND payload IS NULL") == 5
        start = await bot.say(other, other.text("/start"))
        assert "Welcome to Awasi" in start.text
        metrics = await (await bot.client.get("/metrics")).text()
        assert 'awasi_telegram_updates_total{outcome="flood"} 5.0' in metrics


# --- no token in the logs -----------------------------------------------------------------

def leaks(record: logging.LogRecord, formatter: logging.Formatter) -> list[str]:
    """Where ``record`` shows a secret: its message, traceback, any attribute, or its
    rendering by the service's JSON formatter."""
    texts = {"message": record.getMessage(), "attributes": repr(vars(record)),
             "json": formatter.format(record)}
    if record.exc_info:
        texts["traceback"] = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        texts["exc_text"] = record.exc_text
    return [f"{record.name}: {where}" for where, text in texts.items()
            if any(s in text for s in SECRETS)]


async def test_the_token_is_in_no_log_record_at_debug(
        settings: Settings, api: BotApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "telegram", "telegram.ext", "services", "awasi",
                 "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=name)
    user = Updates(5501, language_code="id")
    api.files["ph"] = JPEG
    async with running_bot(bot_settings(settings, api), api) as bot:
        await bot.say(user, user.text("/start"))
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:MDN"))
        await bot.say(user, user.button("c:sampah"))
        await bot.say(user, user.text("Sampah menumpuk di Jalan Sei Batang Hari."))
        await bot.say(user, user.button("skip"))
        await bot.say(user, user.photo("ph", len(JPEG)))  # getFile and a file download
        # A photo the Bot API cannot serve: an exception with its traceback is logged.
        await bot.say(user, user.photo("gone", len(JPEG)))
        await bot.say(user, user.button("done"))
        await bot.say(user, user.button("pv:anonymous"))
        receipt = await bot.say(user, user.button("ok"))
        assert "Kode pelacakan" in receipt.text
        await bot.say(user, user.text("/status"))
    api.unexpected.clear()  # the "gone" photo, on purpose
    records = caplog.records
    formatter = JsonFormatter("intake")
    found = [leak for r in records for leak in leaks(r, formatter)]
    assert found == [], [r.getMessage()[:300] for r in records if leaks(r, formatter)]
    # The test saw what it guards against: httpx's and PTB's own DEBUG lines about
    # the Bot API's URLs (redacted), and the failure's traceback.
    names = {r.name.split(".")[0] for r in records}
    assert {"httpx", "httpcore", "telegram"} <= names
    redacted = [r for r in records if REDACTED in r.getMessage()]
    assert any(r.name == "httpx" and "/file/bot" in r.getMessage() for r in redacted)
    assert any(r.name.startswith("telegram") for r in redacted)
    assert any(r.getMessage() == "telegram update failed" for r in records)


def test_lanes_never_drain_the_database_pool() -> None:
    """Each lane holds two connections at most: all lanes together fit in the pool,
    and the lock holders (one connection each) leave one for a second connection."""
    assert [lanes(n) for n in (1, 4, 5, 10, 16, 40)] == [1, 2, 2, 5, 8, 8]
    for pool_max in range(2, 40):
        assert 2 * lanes(pool_max) <= pool_max and lanes(pool_max) < pool_max
