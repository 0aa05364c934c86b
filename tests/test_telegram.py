"""The Telegram bot end to end: the real python-telegram-bot application inside the
intake app (its own factory, real PostgreSQL and broker), updates POSTed to
``/telegram/webhook``, and the Bot API stand-in (tests/support/botapi.py) recording
what the bot says."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import asyncpg
import pytest

from awasi.events import payloads as p
from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.settings import Settings
from tests.support.botapi import (
    JPEG,
    SECRET,
    TOKEN,
    BotApi,
    Updates,
    bot_settings,
    running_bot,
)
from tests.support.images import PNG, WEBP, decodes
from tests.support.kafka import publish, read_topic
from tests.support.services import ServiceProcess, running_service
from tests.support.wait import eventually


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
        # Re-encoded without metadata: a JPEG of the same size, not the same bytes.
        assert photo["content_type"] == "image/jpeg"
        assert decodes(bytes(photo["data"])) == decodes(JPEG)
        assert [c.method for c in api.calls].count("getFile") == 1
        assert await bot.chat_state(1001) == "idle"


async def test_full_report_in_english_anonymous_without_photo_or_location(
        settings: Settings, api: BotApi) -> None:
    user = Updates(1002, language_code="en-US")
    async with running_bot(bot_settings(settings, api), api) as bot:
        q = await bot.say(user, user.text("/lapor"))
        assert "Which city or area" in q.text
        q = await bot.say(user, user.button("r:MDN"))
        assert ("Waste not collected", "c:sampah") in q.buttons or any(
            d == "c:sampah" for _, d in q.buttons)
        await bot.say(user, user.button("c:sampah"))
        q = await bot.say(user, user.text("Garbage has not been collected for two weeks."))
        assert "Where is it?" in q.text and ("Skip", "skip") in q.buttons
        q = await bot.say(user, user.button("skip"))
        assert "Send up to 3 photos" in q.text and ("Skip", "done") in q.buttons
        q = await bot.say(user, user.button("done"))
        assert "How do you want to report?" in q.text
        summary = await bot.say(user, user.button("pv:anonymous"))
        # Anonymous asks nothing about the citizen: straight to the summary.
        assert "Please check your report" in summary.text
        assert "Name:" not in summary.text and "Location: -" in summary.text
        receipt = await bot.say(user, user.button("ok"))
        assert "Tracking code: MDN-" in receipt.text and "Follow-up secret:" in receipt.text

        row = await bot.pool.fetchrow("SELECT * FROM intake.complaints")
        assert row["privacy"] == "anonymous" and row["lat"] is None and row["address"] is None
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.reporters") == 0
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.photos") == 0
        # /status with no argument lists this chat's complaints; with a code, the details.
        mine = await bot.say(user, user.text("/status"))
        assert row["tracking_code"] in mine.text and "Your complaints" in mine.text
        detail = await bot.say(user, user.text(f"/status {row['tracking_code'].lower()}"))
        assert f"Complaint {row['tracking_code']}" in detail.text and "Status:" in detail.text
        unknown = await bot.say(user, user.text("/status MDN-0000-0000"))
        assert "No complaint has the tracking code" in unknown.text


@pytest.mark.parametrize("privacy", ["confidential", "anonymous"])
async def test_no_personal_data_on_the_intake_topic(settings: Settings, api: BotApi,
                                                    privacy: str) -> None:
    user = Updates(7350011003, language_code="id", first_name="Rahmawati")
    async with running_bot(bot_settings(settings, api), api) as bot:
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:MDN"))
        await bot.say(user, user.button("c:asn-pungli"))
        await bot.say(user, user.text("Petugas kelurahan meminta uang untuk surat pengantar."))
        await bot.say(user, user.text("Kantor Lurah Sei Sikambing B"))
        await bot.say(user, user.button("done"))
        q = await bot.say(user, user.button(f"pv:{privacy}"))
        if privacy == "confidential":
            await bot.say(user, user.text("Siti Rahmawati Nasution"))
            q = await bot.say(user, user.text("+62 812 9999 4321"))
        assert "Periksa laporan" in q.text
        await bot.say(user, user.button("ok"))
        msgs = await read_topic(settings.kafka_bootstrap or "", topics.INTAKE,
                                until=lambda m: any(x.get("type") == "complaint.submitted"
                                                    for x in m))
        raw = " ".join(m["_raw"] for m in msgs)
        for personal in ("Rahmawati", "Nasution", "812 9999", "9999 4321", "7350011003"):
            assert personal not in raw
        submitted = next(m for m in msgs if m["type"] == "complaint.submitted")
        assert submitted["payload"]["privacy"] == privacy
        assert submitted["payload"]["channel"] == "telegram"
        reporters = await bot.pool.fetch("SELECT name, phone FROM intake.reporters")
        if privacy == "confidential":
            assert [tuple(r) for r in reporters] == [("Siti Rahmawati Nasution",
                                                      "+62 812 9999 4321")]
        else:
            assert reporters == []


async def test_editing_at_the_summary(settings: Settings, api: BotApi) -> None:
    user = Updates(1004, language_code="en")
    async with running_bot(bot_settings(settings, api), api) as bot:
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:MDN"))
        await bot.say(user, user.button("c:sampah"))
        await bot.say(user, user.text("First version of the description, too vague."))
        await bot.say(user, user.button("skip"))
        await bot.say(user, user.button("done"))
        await bot.say(user, user.button("pv:confidential"))
        await bot.say(user, user.text("Budi"))
        summary = await bot.say(user, user.button("skip"))
        assert "First version" in summary.text
        menu = await bot.say(user, user.button("edit"))
        assert ("Description", "ed:description") in menu.buttons
        await bot.say(user, user.button("ed:description"))
        summary = await bot.say(user, user.text("Second version: rubbish piled up at the "
                                                "market for ten days."))
        assert "Please check your report" in summary.text and "Second version" in summary.text
        # Changing the region asks the category again, then back to the summary.
        await bot.say(user, user.button("edit"))
        q = await bot.say(user, user.button("ed:region"))
        q = await bot.say(user, user.button("r:PLJ"))
        assert any(d == "c:jalan-rusak" for _, d in q.buttons)
        summary = await bot.say(user, user.button("c:jalan-rusak"))
        assert "Please check your report" in summary.text
        assert "Plaju" in summary.text
        # Privacy edited to anonymous drops the name.
        await bot.say(user, user.button("edit"))
        await bot.say(user, user.button("ed:privacy"))
        summary = await bot.say(user, user.button("pv:anonymous"))
        assert "Budi" not in summary.text
        await bot.say(user, user.button("ok"))
        row = await bot.pool.fetchrow("SELECT * FROM intake.complaints")
        assert row["region"] == "PLJ" and row["category"] == "jalan-rusak"
        assert row["description"].startswith("Second version") and row["privacy"] == "anonymous"
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.reporters") == 0


async def test_cancel(settings: Settings, api: BotApi) -> None:
    user = Updates(1005, language_code="id")
    api.files["ph2"] = JPEG
    async with running_bot(bot_settings(settings, api), api) as bot:
        nothing = await bot.say(user, user.text("/batal"))
        assert "Tidak ada yang dibatalkan" in nothing.text
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:MDN"))
        await bot.say(user, user.button("c:sampah"))
        await bot.say(user, user.text("Sampah menumpuk di depan pasar."))
        await bot.say(user, user.button("skip"))
        await bot.say(user, user.photo("ph2", len(JPEG)))
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.telegram_draft_photos") == 1
        done = await bot.say(user, user.text("/batal"))
        assert "dibatalkan" in done.text
        assert await bot.chat_state(1005) == "idle"
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.telegram_draft_photos") == 0
        # A button of the cancelled report is stale now.
        stale = await bot.say(user, user.button("done"))
        assert "tidak berlaku" in stale.text
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.complaints") == 0


async def test_restart_in_the_middle_of_a_report_resumes(settings: Settings,
                                                        api: BotApi) -> None:
    user = Updates(1006, language_code="id")
    s = bot_settings(settings, api)
    async with running_bot(s, api) as bot:
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:SRG"))
        q = await bot.say(user, user.button("c:puskesmas"))
        assert "Jelaskan" in q.text
    # A new intake process on the same database: the citizen continues.
    async with running_bot(s, api) as bot:
        q = await bot.say(user, user.text("Puskesmas tutup pada jam pelayanan hari Senin."))
        assert "lokasi" in q.text.lower()
        await bot.say(user, user.button("skip"))
        await bot.say(user, user.button("done"))
        await bot.say(user, user.button("pv:anonymous"))
        receipt = await bot.say(user, user.button("ok"))
        assert "Kode pelacakan: SRG-" in receipt.text
        row = await bot.pool.fetchrow("SELECT region, category, description FROM "
                                      "intake.complaints")
        assert tuple(row) == ("SRG", "puskesmas",
                              "Puskesmas tutup pada jam pelayanan hari Senin.")


async def test_a_repeated_update_changes_nothing(settings: Settings, api: BotApi) -> None:
    user = Updates(1007, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:MDN"))
        await bot.say(user, user.button("c:sampah"))
        update = user.text("Sampah tidak diangkut sejak hari Senin.")
        await bot.say(user, update)
        n = len(api.sent(1007))
        assert await bot.post(update) == 200  # Telegram retries the same update_id
        assert await bot.post(update) == 200
        assert len(api.sent(1007)) == n
        assert await bot.chat_state(1007) == "location"
        # Also a repeated "Send": one complaint only.
        await bot.say(user, user.button("skip"))
        await bot.say(user, user.button("done"))
        await bot.say(user, user.button("pv:anonymous"))
        ok = user.button("ok")
        await bot.say(user, ok)
        assert await bot.post(ok) == 200
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.complaints") == 1
        assert await bot.pool.fetchval(
            "SELECT count(*) FROM intake.telegram_updates WHERE update_id = $1",
            update["update_id"]) == 1
        metrics = await (await bot.client.get("/metrics")).text()
        assert 'awasi_telegram_updates_total{outcome="duplicate"} 3.0' in metrics


async def test_webhook_refuses_calls_without_the_right_secret(settings: Settings,
                                                             api: BotApi) -> None:
    user = Updates(1008)
    async with running_bot(bot_settings(settings, api), api) as bot:
        for secret, status in ((None, 401), ("wrong", 403), ("", 403),
                               ("webhook-secret-0123456789x", 403)):
            r = await bot.client.post("/telegram/webhook", json=user.text("/start"),
                                      headers={} if secret is None else
                                      {"X-Telegram-Bot-Api-Secret-Token": secret})
            assert r.status == status
            body = await r.json()
            assert set(body["error"]) == {"code", "message", "details"}
        # Not an update at all.
        for body in (b"not json", b"[1, 2]", b'{"no_update_id": 1}'):
            r = await bot.client.post("/telegram/webhook", data=body, headers={
                "X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"})
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "bad_request"
        assert api.sent() == []
        assert await bot.post(user.text("/start")) == 200
        await api.wait_sent(1008, 1)


async def test_bot_is_off_without_a_token(settings: Settings,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="services.intake.telegram.bot")
    async with running_service("intake", settings.with_(telegram_token="")) as client:
        r = await client.post("/telegram/webhook", json={"update_id": 1},
                              headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "not_found"
    off = [r for r in caplog.records if "Telegram bot is off" in r.getMessage()]
    assert len(off) == 1


async def test_garbage_and_messages_at_the_wrong_moment_get_a_hint(
        settings: Settings, api: BotApi) -> None:
    user = Updates(1009, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        # Unknown update types: processed (recorded), nobody to answer, nothing sent.
        assert await bot.post({"update_id": 900001, "some_future_type": {"x": 1}}) == 200
        # A channel post: not a private chat, ignored.
        assert await bot.post({"update_id": 900002, "channel_post": {
            "message_id": 5, "date": 1, "text": "/lapor",
            "chat": {"id": -100123, "type": "channel", "title": "Berita"}}}) == 200
        # A known type PTB cannot read (a malformed poll): acknowledged so Telegram does
        # not resend it forever, and dropped.
        assert await bot.post({"update_id": 900003, "poll": {"id": "p"}}) == 200
        assert api.sent() == []
        assert await bot.pool.fetchval(
            "SELECT count(*) FROM intake.telegram_updates WHERE update_id > 900000") == 2
        idle = await bot.say(user, user.text("halo"))
        assert "/lapor" in idle.text
        sticker = await bot.say(user, user.sticker())
        assert "/lapor" in sticker.text
        edited = await bot.say(user, user.edited("halo lagi"))
        assert "diedit" in edited.text
        unknown = await bot.say(user, user.text("/apaini"))
        assert "tidak dikenal" in unknown.text and "/bantuan" in unknown.text
        helped = await bot.say(user, user.text("/bantuan"))
        assert "/status KODE" in helped.text
        await bot.say(user, user.text("/lapor"))
        hint = await bot.say(user, user.text("Medan"))
        assert "pilih dengan tombol" in hint.text and ("Kota Medan", "r:MDN") in hint.buttons
        await bot.say(user, user.button("r:MDN"))
        stale = await bot.say(user, user.button("r:PLJ"))  # the region is already chosen
        assert "tidak berlaku" in stale.text and any(d == "c:sampah" for _, d in stale.buttons)
        await bot.say(user, user.button("c:sampah"))
        sticker = await bot.say(user, user.sticker())
        assert "pesan teks" in sticker.text and "Jelaskan" in sticker.text
        short = await bot.say(user, user.text("kotor"))
        assert "10 sampai 4000" in short.text
        await bot.say(user, user.text("Sampah tidak diangkut sejak hari Senin."))
        await bot.say(user, user.button("skip"))
        not_photo = await bot.say(user, user.text("ini fotonya"))
        assert "Kirim foto" in not_photo.text
        api.files["notimg"] = b"GIF89a" + b"\x00" * 50
        gif = await bot.say(user, user.photo("notimg", 56))
        assert "JPEG, PNG, atau WebP" in gif.text
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.telegram_draft_photos") == 0
        assert await bot.chat_state(1009) == "photos"


async def test_polling_mode(settings: Settings, api: BotApi) -> None:
    user = Updates(1010, language_code="en")
    api.updates.append(user.text("/start"))
    s = bot_settings(settings, api, telegram_mode="polling")
    async with running_bot(s, api) as bot:
        await api.wait_sent(1010, 1)
        assert "Welcome to Awasi" in api.sent(1010)[0].text
        # The webhook is not used in polling mode.
        r = await bot.client.post("/telegram/webhook", json=user.text("/start"),
                                  headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert r.status == 404
    methods = [c.method for c in api.calls]
    assert "getUpdates" in methods and "deleteWebhook" in methods


def test_awasi_dev_polls_when_a_token_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from awasi.devstack import service_env

    monkeypatch.setenv("AWASI_TELEGRAM_TOKEN", "123:abc")
    monkeypatch.delenv("AWASI_TELEGRAM_MODE", raising=False)
    assert service_env(Settings(), "db", "kafka")["AWASI_TELEGRAM_MODE"] == "polling"
    monkeypatch.setenv("AWASI_TELEGRAM_MODE", "webhook")
    assert service_env(Settings(), "db", "kafka")["AWASI_TELEGRAM_MODE"] == "webhook"
    monkeypatch.delenv("AWASI_TELEGRAM_TOKEN")
    monkeypatch.delenv("AWASI_TELEGRAM_MODE")
    assert "AWASI_TELEGRAM_MODE" not in service_env(Settings(), "db", "kafka")


async def test_up_to_three_photos_then_on(settings: Settings, api: BotApi) -> None:
    user = Updates(1011, language_code="en")
    png, webp = PNG, WEBP
    api.files.update(a=JPEG, b=png, c=webp)
    async with running_bot(bot_settings(settings, api), api) as bot:
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:MDN"))
        await bot.say(user, user.button("c:jalan-rusak"))
        await bot.say(user, user.text("A deep hole in the road in front of the school."))
        await bot.say(user, user.text("Jl. Brigjend Katamso 100, Medan"))
        q = await bot.say(user, user.photo("a", len(JPEG)))
        assert "1 received" in q.text and ("Done", "done") in q.buttons
        await bot.say(user, user.photo("b", len(png)))
        await bot.say(user, user.photo("c", len(webp)))
        # The third photo moves on by itself.
        sent = api.sent(1011)  # join() waited for the whole handler: both are out
        assert "Photo 3 of 3 received" in sent[-2].text
        assert "How do you want to report?" in sent[-1].text
        await bot.say(user, user.button("pv:anonymous"))
        await bot.say(user, user.button("ok"))
        rows = await bot.pool.fetch("SELECT content_type FROM intake.photos ORDER BY created_at")
        assert sorted(r["content_type"] for r in rows) == ["image/jpeg", "image/png",
                                                           "image/webp"]
        assert await bot.pool.fetchval("SELECT address FROM intake.complaints") == (
            "Jl. Brigjend Katamso 100, Medan")
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.telegram_draft_photos") == 0


@pytest.mark.slow
async def test_sigkill_of_intake_mid_report_and_mid_delivery(database_url: str, broker: Any,
                                                             api: BotApi) -> None:
    """A real ``awasi serve intake`` process killed with SIGKILL: the report resumes in
    the next process, and a notification queued while Telegram was unreachable is
    delivered by it."""
    user = Updates(1012, language_code="id")
    env = {"AWASI_TELEGRAM_TOKEN": TOKEN, "AWASI_TELEGRAM_WEBHOOK_SECRET": SECRET,
           "AWASI_TELEGRAM_API_URL": api.url}

    async def post(proc: ServiceProcess, update: dict[str, Any]) -> None:
        before = len(api.sent(1012))
        async with aiohttp.ClientSession() as session:
            async def taken() -> bool:
                async with session.post(f"{proc.url}/telegram/webhook", json=update, headers={
                        "X-Telegram-Bot-Api-Secret-Token": SECRET}) as r:
                    if r.status == 503:  # while the bot is still starting
                        return False
                    assert r.status == 200
                    return True

            await eventually(taken, within=15, what="the webhook taking the update")
        await api.wait_sent(1012, before + 1, within=15)

    first = ServiceProcess("intake", database_url, broker.bootstrap, extra_env=env)
    first.start()
    try:
        await first.wait_healthy()
        await post(first, user.text("/lapor"))
        await post(first, user.button("r:MDN"))
        await post(first, user.button("c:drainase"))
    finally:
        first.kill()
    second = ServiceProcess("intake", database_url, broker.bootstrap, extra_env=env)
    second.start()
    try:
        await second.wait_healthy()
        await post(second, user.text("Selokan tersumbat, air menggenang di jalan."))
        assert "lokasi" in api.sent(1012)[-1].text.lower()
        await post(second, user.button("skip"))
        await post(second, user.button("done"))
        await post(second, user.button("pv:anonymous"))
        await post(second, user.button("ok"))
        assert "Kode pelacakan: MDN-" in api.sent(1012)[-1].text
        conn = await asyncpg.connect(database_url)
        try:
            row = await conn.fetchrow("SELECT id, tracking_code FROM intake.complaints")
            assert row is not None
            # Telegram unreachable: the notification waits in the queue ...
            api.down = True
            before = len(api.sent(1012))
            env_ = Envelope.build(p.TicketResponded(agency="MDN-PUPR", message="Dikerjakan."),
                                  complaint_id=str(row["id"]), producer="router")
            await publish(broker.bootstrap, topics.ROUTER, env_.to_bytes(),
                          key=str(row["id"]).encode())
            await eventually(lambda: conn.fetchval(
                "SELECT count(*) FROM intake.telegram_notifications WHERE attempts >= 1"),
                within=20, what="a delivery attempted")
        finally:
            await conn.close()
    finally:
        second.kill()
    # ... and the next process delivers it once Telegram is back.
    api.down = False
    third = ServiceProcess("intake", database_url, broker.bootstrap, extra_env=env)
    third.start()
    try:
        await third.wait_healthy()
        await api.wait_sent(1012, before + 1, within=90)
        assert "Dinas PUPR menanggapi" in api.sent(1012)[-1].text
        assert row["tracking_code"] in api.sent(1012)[-1].text
    finally:
        third.stop()


async def test_intake_starts_while_the_bot_api_is_unreachable(settings: Settings,
                                                             api: BotApi) -> None:
    user = Updates(1013, language_code="en")
    api.down = True
    async with running_bot(bot_settings(settings, api), api, wait_ready=False) as bot:
        # Intake itself is up and takes complaints; the webhook says "not yet".
        assert (await bot.client.get("/readyz")).status == 200
        r = await bot.client.post("/api/v1/complaints", json={
            "region": "MDN", "category": "sampah", "privacy": "anonymous",
            "description": "Sampah tidak diangkut sejak dua minggu."})
        assert r.status == 201
        assert await bot.post(user.text("/start")) == 503
        api.down = False
        await bot.wait_ready()
        start = await bot.say(user, user.text("/start"))
        assert "Welcome to Awasi" in start.text


async def test_a_refused_token_turns_the_bot_off(settings: Settings, api: BotApi,
                                                caplog: pytest.LogCaptureFixture) -> None:
    s = bot_settings(settings, api, telegram_token="999:not-the-token")
    async with running_bot(s, api, wait_ready=False) as bot:
        async def refused() -> bool:
            return any("refused AWASI_TELEGRAM_TOKEN" in r.getMessage()
                       for r in caplog.records)

        await eventually(refused, within=10, what="the token refused")
        assert (await bot.client.get("/readyz")).status == 200
        assert await bot.post(Updates(1014).text("/start")) == 503
    # The stand-in saw exactly the one getMe with the wrong token, and no retries.
    assert api.unexpected == ["wrong token for getMe"]
    api.unexpected.clear()


async def test_errors_are_logged_then_the_citizen_is_told(
        settings: Settings, api: BotApi, caplog: pytest.LogCaptureFixture) -> None:
    user = Updates(1015, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:MDN"))
        await bot.say(user, user.button("c:sampah"))
        await bot.say(user, user.text("Sampah tidak diangkut sejak hari Senin."))
        await bot.say(user, user.button("skip"))
        # A photo whose file the Bot API cannot serve: the handler fails.
        sorry = await bot.say(user, user.photo("gone", len(JPEG)))
        assert "terjadi kesalahan" in sorry.text
        assert any(r.getMessage() == "telegram update failed" for r in caplog.records)
        assert api.unexpected == ["getFile for unknown gone",
                                  "download of unknown file photos/gone.jpg"]
        api.unexpected.clear()
        # The citizen can go on.
        assert await bot.chat_state(1015) == "photos"
        # Blocked while we answer: the chat is marked, nothing more is tried.
        api.blocked.add(1015)
        before = len(api.sent(1015))
        assert await bot.post(user.text("/bantuan")) == 200
        assert len(api.sent(1015)) == before + 1  # the one refused answer
        assert await bot.pool.fetchval(
            "SELECT blocked_at IS NOT NULL FROM intake.telegram_chats WHERE chat_id = 1015")
