"""Participation in the Telegram bot: the real python-telegram-bot application inside
the intake app (real PostgreSQL and broker), updates POSTed to the webhook, the Bot
API stand-in recording what the bot says.

- ``/status CODE`` of a public open report carries a support button; a support counts
  once per Telegram user, also after a restart of the service; ``/dukung CODE`` does
  the same; private and unknown codes get no button and no count;
- before the summary of a new report, similar open public reports are offered with a
  support button each, and "Send" stays on the same message;
- a shared location outside the chosen city is refused with a hint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from awasi.settings import Settings
from tests.support.botapi import (
    TOKEN,
    BotApi,
    BotClient,
    Updates,
    bot_settings,
    running_bot,
    running_botapi,
)
from tests.support.intake import complaint


@pytest.fixture
async def api() -> AsyncIterator[BotApi]:
    async with running_botapi(TOKEN) as stand_in:
        yield stand_in
        stand_in.assert_clean()


async def file_public(bot: BotClient, **over: object) -> str:
    r = await bot.client.post("/api/v1/complaints", json=complaint(
        visibility="public", privacy="anonymous", category="sampah",
        description="Sampah menumpuk di Jalan Sei Batang Hari dua minggu.", **over))
    assert r.status == 201
    return str((await r.json())["tracking_code"])


async def support_count(bot: BotClient, code: str) -> int:
    return int(await bot.pool.fetchval(
        "SELECT support_count FROM intake.complaints WHERE tracking_code = $1", code))


async def test_support_from_status_once_per_telegram_user_across_a_restart(
        settings: Settings, api: BotApi) -> None:
    s = bot_settings(settings, api).with_(rate_limit_per_minute=10_000)
    siti, budi = Updates(2001), Updates(2002)
    async with running_bot(s, api) as bot:
        code = await file_public(bot)
        private = (await (await bot.client.post("/api/v1/complaints", json=complaint(
            privacy="anonymous"))).json())["tracking_code"]
        status = await bot.say(siti, siti.text(f"/status {code}"))
        assert ("Saya juga mengalami (0)", f"sup:{code}") in status.buttons
        done = await bot.say(siti, siti.button(f"sup:{code}"))
        assert "dukungan Anda untuk" in done.text and "Kini 1 orang" in done.text
        again = await bot.say(siti, siti.button(f"sup:{code}"))
        assert "sudah mendukung" in again.text
        assert await support_count(bot, code) == 1
        other = await bot.say(budi, budi.text(f"/dukung {code}"))
        assert "Kini 2 orang" in other.text
        # A private report: no button, and a support attempt is refused like an unknown.
        status = await bot.say(siti, siti.text(f"/status {private}"))
        assert not status.buttons
        refused = await bot.say(siti, siti.button(f"sup:{private}"))
        assert "Tidak ada laporan publik terbuka" in refused.text
        refused = await bot.say(siti, siti.text("/dukung MDN-ZZZZ-ZZZZ"))
        assert "Tidak ada laporan publik terbuka" in refused.text
        assert await support_count(bot, private) == 0
    # A restart: the same Telegram user is still the same supporter.
    async with running_bot(s, api) as bot:
        again = await bot.say(siti, siti.button(f"sup:{code}"))
        assert "sudah mendukung" in again.text and "total 2 orang" in again.text
        assert await support_count(bot, code) == 2
        # No Telegram id is stored with the supports.
        keys = [bytes(r["supporter"]) for r in await bot.pool.fetch(
            "SELECT supporter FROM intake.supports")]
        assert all(b"2001" not in k and b"2002" not in k for k in keys) and len(keys) == 2


async def test_similar_reports_before_the_summary_and_sending_anyway(
        settings: Settings, api: BotApi) -> None:
    s = bot_settings(settings, api).with_(rate_limit_per_minute=10_000)
    user = Updates(2003)
    async with running_bot(s, api) as bot:
        code = await file_public(bot)
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:MDN"))
        await bot.say(user, user.button("c:sampah"))
        await bot.say(user, user.text("Sampah menumpuk di Jalan Sei Batang Hari, bau sekali."))
        await bot.say(user, user.button("skip"))
        await bot.say(user, user.button("done"))
        summary = await bot.say(user, user.button("pv:anonymous"))
        assert "Laporan serupa sudah ada" in summary.text and code in summary.text
        data = [d for _, d in summary.buttons]
        assert f"sup:{code}" in data and "ok" in data  # supporting or sending: one tap
        # Support from there: the draft waits at the summary, without the list again.
        after = await bot.say(user, user.button(f"sup:{code}"))
        assert "Kini 1 orang" in after.text and "Periksa laporan" in after.text
        assert "Laporan serupa" not in after.text
        assert await bot.chat_state(2003) == "summary"
        receipt = await bot.say(user, user.button("ok"))
        assert "Kode pelacakan: MDN-" in receipt.text
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.complaints") == 2


async def test_shared_location_outside_the_city_is_refused(
        settings: Settings, api: BotApi) -> None:
    user = Updates(2004)
    async with running_bot(bot_settings(settings, api), api) as bot:
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:SRG"))
        await bot.say(user, user.button("c:jalan-rusak"))
        q = await bot.say(user, user.text("Jalan berlubang di depan pasar Remu."))
        assert "lokasi" in q.text.lower()
        q = await bot.say(user, user.location(3.5952, 98.6722))  # Medan
        assert "di luar Kota Sorong" in q.text
        assert await bot.chat_state(2004) == "location"
        q = await bot.say(user, user.location(-0.8762, 131.2558))
        assert "foto" in q.text.lower()
