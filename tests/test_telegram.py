"""The Telegram bot end to end: the real python-telegram-bot application inside the
intake app (its own factory, real PostgreSQL and broker), updates POSTed to
``/telegram/webhook``, and the Bot API stand-in (tests/support/botapi.py) recording
what the bot says."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from awasi.settings import Settings
from tests.support.botapi import (
    JPEG,
    BotApi,
    Updates,
    bot_settings,
    running_botapi,
    running_bot,
    TOKEN,
)


@pytest.fixture
async def api() -> AsyncIterator[BotApi]:
    async with running_botapi(TOKEN) as stand_in:
        yield stand_in
        stand_in.assert_clean()


async def test_full_report_in_indonesian_named_with_photo_and_location(
        settings: Settings, api: BotApi) -> None:
    user = Updates(1001, language_code="id")
    api.files["ph1"] = JPEG
    async with running_bot(bot_settings(settings, api), api) as bot:
        start = await bot.say(user, user.text("/start"))
        assert "Selamat datang" in start.text and "Privasi" in start.text
        q = await bot.say(user, user.text("/lapor"))
        assert "kota atau wilayah" in q.text
        assert ("Kota Medan", "r:MDN") in q.buttons
        q = await bot.say(user, user.button("r:MDN"))
        assert ("Sampah tidak diangkut", "c:sampah") in q.buttons
        q = await bot.say(user, user.button("c:sampah"))
        assert "Jelaskan" in q.text
        q = await bot.say(user, user.text("Sampah menumpuk di Jalan Sei Batang Hari."))
        assert "lokasi" in q.text.lower()
        q = await bot.say(user, user.location(3.5952, 98.6722))
        assert "foto" in q.text.lower()
        q = await bot.say(user, user.photo("ph1", len(JPEG)))
        assert "Sudah diterima: 1" in q.text
        q = await bot.say(user, user.button("done"))
        assert {d for _, d in q.buttons} == {"pv:named", "pv:confidential", "pv:anonymous"}
        q = await bot.say(user, user.button("pv:named"))
        assert "Nama" in q.text
        q = await bot.say(user, user.text("Siti Rahmawati"))
        assert "telepon" in q.text
        summary = await bot.say(user, user.text("+62 812 5550 1234"))
        assert "Periksa laporan" in summary.text
        assert "Siti Rahmawati" in summary.text and "3.59520, 98.67220" in summary.text
        assert "Foto: 1" in summary.text
        receipt = await bot.say(user, user.button("ok"))
        assert "Kode pelacakan: MDN-" in receipt.text and "Kode rahasia" in receipt.text

        row = await bot.pool.fetchrow(
            "SELECT c.*, r.name, r.phone FROM intake.complaints c"
            " JOIN intake.reporters r ON r.complaint_id = c.id")
        assert row["channel"] == "telegram" and row["privacy"] == "named"
        assert row["category"] == "sampah" and row["region"] == "MDN"
        assert (row["lat"], row["lon"]) == (3.5952, 98.6722)
        assert (row["name"], row["phone"]) == ("Siti Rahmawati", "+62 812 5550 1234")
        assert row["tracking_code"] in receipt.text
        photo = await bot.pool.fetchrow("SELECT content_type, data FROM intake.photos")
        assert photo["content_type"] == "image/jpeg" and bytes(photo["data"]) == JPEG
        assert [c.method for c in api.calls].count("getFile") == 1
        assert await bot.chat_state(1001) == "idle"
