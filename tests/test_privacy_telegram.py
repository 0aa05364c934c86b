"""The bot and visibility: a report stays private unless the citizen presses "Make it
public" at the summary; ``/status CODE`` shows the conversation only in the chat that
filed the complaint; a public report from the bot is listed without the chat id or
the reporter's contact."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from awasi.events import payloads as p
from awasi.events import topics
from awasi.events.envelope import Envelope
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
from tests.support.kafka import publish
from tests.support.wait import eventually

pytestmark = pytest.mark.filterwarnings(
    "ignore:Deprecated since version v22.2:telegram.warnings.PTBDeprecationWarning")

CHAT = 7350022001
OTHER = 7350022002
QUESTION = "Di depan rumah nomor berapa tumpukan sampahnya?"


@pytest.fixture
async def api() -> AsyncIterator[BotApi]:
    async with running_botapi(TOKEN) as stand_in:
        yield stand_in
        stand_in.assert_clean()


async def walk_to_summary(bot: BotClient, user: Updates) -> list[tuple[str, str]]:
    await bot.say(user, user.text("/lapor"))
    await bot.say(user, user.button("r:MDN"))
    await bot.say(user, user.button("c:sampah"))
    await bot.say(user, user.text("Sampah menumpuk di Jalan Sei Batang Hari dua minggu."))
    await bot.say(user, user.text("Jalan Sei Batang Hari 12"))
    await bot.say(user, user.button("done"))
    await bot.say(user, user.button("pv:confidential"))
    await bot.say(user, user.text("Siti Rahmawati"))
    summary = await bot.say(user, user.text("+62 812 5550 1234"))
    assert "Publikasi: Tertutup" in summary.text  # private unless chosen
    return summary.buttons


async def test_private_by_default_public_by_choice(settings: Settings, api: BotApi) -> None:
    user = Updates(CHAT, language_code="id", first_name="Siti")
    async with running_bot(bot_settings(settings, api), api) as bot:
        buttons = await walk_to_summary(bot, user)
        assert ("Jadikan publik", "vis:public") in buttons
        await bot.say(user, user.button("ok"))
        buttons = await walk_to_summary(bot, user)
        public = await bot.say(user, user.button("vis:public"))
        assert "Publikasi: Publik" in public.text and "tidak pernah ditampilkan" in public.text
        assert ("Tetap tertutup", "vis:private") in public.buttons
        await bot.say(user, user.button("ok"))
        rows = await bot.pool.fetch(
            "SELECT tracking_code, visibility FROM intake.complaints ORDER BY submitted_at")
        assert [r["visibility"] for r in rows] == ["private", "public"]

        r = await bot.client.get("/api/v1/reports")
        listed = (await r.json())["reports"]
        assert [x["tracking_code"] for x in listed] == [rows[1]["tracking_code"]]
        text = json.dumps(listed)
        for needle in (str(CHAT), "Siti", "Rahmawati", "5550 1234", "812 5550"):
            assert needle not in text
        r = await bot.client.get(f"/open311/v2/requests/{rows[0]['tracking_code']}.json")
        assert r.status == 404


async def test_status_shows_the_conversation_only_in_the_filing_chat(
        settings: Settings, api: BotApi) -> None:
    user = Updates(CHAT, language_code="id")
    other = Updates(OTHER, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _receipt = await bot.report(user, privacy="anonymous")
        routed = p.ComplaintRouted(
            tracking_code=code, region="MDN", category="sampah", agency="MDN-DLH",
            rule="category:MDN:sampah", deadlines=p.Deadlines())
        for payload in (routed, p.TicketInfoRequested(agency="MDN-DLH", question=QUESTION,
                                                     paused_at=datetime.now(UTC))):
            env = Envelope.build(payload, complaint_id=cid, producer="router")
            await publish(settings.kafka_bootstrap or "", topics.ROUTER, env.to_bytes(),
                          key=cid.encode())

        async def asked() -> bool:
            return await bot.pool.fetchval(
                "SELECT status FROM intake.complaints WHERE tracking_code = $1",
                code) == "waiting_info"

        await eventually(asked)
        mine = await bot.say(user, user.text(f"/status {code}"))
        assert "Percakapan:" in mine.text and QUESTION in mine.text
        assert "Kategori:" in mine.text
        theirs = await bot.say(other, other.text(f"/status {code}"))
        assert f"Pengaduan {code}" in theirs.text and "DLH" in theirs.text
        assert QUESTION not in theirs.text and "Kategori:" not in theirs.text
        assert "hanya ditampilkan di chat yang melaporkannya" in theirs.text
