"""Telegram notifications end to end: router/oversight events published on the test
broker, applied by intake's consumer, queued durably, and delivered by the sender to
the Bot API stand-in; answering an agency's question, rating and dispute from the
chat; a user who blocked the bot; Telegram answering 429 or being unreachable."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from awasi.events import payloads as p
from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.settings import Settings
from tests.support.botapi import (
    BotApi,
    BotClient,
    Updates,
    bot_settings,
    running_bot,
)
from tests.support.images import PNG, image_bytes
from tests.support.kafka import publish, read_topic
from tests.support.wait import eventually

AGENCY = "MDN-DLH"

# PTB 22 itself reads RetryAfter.retry_after as an int in the exception's constructor
# and warns that it will become a timedelta; the sender handles both.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Deprecated since version v22.2:telegram.warnings.PTBDeprecationWarning")


async def emit(settings: Settings, cid: str, payload: p.Payload, *,
               topic: str = topics.ROUTER) -> Envelope:
    env = Envelope.build(payload, complaint_id=cid,
                         producer="oversight" if topic == topics.OVERSIGHT else "router")
    await publish(settings.kafka_bootstrap or "", topic, env.to_bytes(), key=cid.encode())
    return env


def later(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def routed(code: str) -> p.ComplaintRouted:
    return p.ComplaintRouted(tracking_code=code, region="MDN", category="sampah",
                             agency=AGENCY, rule="category:MDN:sampah",
                             deadlines=p.Deadlines(acknowledge_by=later(5), resolve_by=later(14)))


def resolved(dispute_days: float = 10) -> p.TicketResolved:
    return p.TicketResolved(agency=AGENCY, note="Sampah sudah diangkut pada hari Selasa.",
                            deadlines=p.Deadlines(dispute_until=later(dispute_days)))


async def notified(bot: BotClient, chat_id: int, n: int, within: float = 20.0) -> list[str]:
    """Wait for ``n`` messages to the chat; return their texts."""
    return [c.text for c in await bot.api.wait_sent(chat_id, n, within)]


async def test_every_change_the_citizen_may_see_is_pushed_in_their_language(
        settings: Settings, api: BotApi) -> None:
    user = Updates(7350012001, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(7350012001))
        events: list[tuple[p.Payload, str]] = [
            (routed(code), topics.ROUTER),
            (p.TicketAcknowledged(agency=AGENCY, deadlines=p.Deadlines(resolve_by=later(14))),
             topics.ROUTER),
            (p.DeadlineWarning(kind="resolve", agency=AGENCY, due_at=later(1)),
             topics.OVERSIGHT),  # for staff: not sent to the citizen
            (p.TicketInfoRequested(agency=AGENCY, question="Di RT berapa tepatnya?",
                                   paused_at=datetime.now(UTC)), topics.ROUTER),
            (p.TicketResponded(agency=AGENCY, message="Truk dijadwalkan hari Selasa."),
             topics.ROUTER),
            (p.DeadlineBreached(kind="resolve", agency=AGENCY, due_at=later(-1)),
             topics.OVERSIGHT),
            (p.CaseEscalated(level=1, kind="resolve", agency=AGENCY), topics.OVERSIGHT),
            (p.FindingRecorded(outcome="maladministration", recommendation="internal note",
                               published=False), topics.OVERSIGHT),  # unpublished: not sent
            (p.FindingRecorded(outcome="maladministration",
                               maladministration_type="undue_delay",
                               recommendation="Jadwal angkut sampah diperbaiki.",
                               published=True), topics.OVERSIGHT),
            (resolved(), topics.ROUTER),
        ]
        for payload, topic in events:
            await emit(settings, cid, payload, topic=topic)
        texts = (await notified(bot, 7350012001, base + 8))[base:]
        assert len(texts) == 8

        def one(part: str) -> str:
            # Two topics: router and oversight events may interleave.
            found = [t for t in texts if part in t]
            assert len(found) == 1, (part, texts)
            return found[0]

        assert "WIB" in one(f"Pengaduan Anda {code} sudah diteruskan ke DLH")  # local time
        one("DLH sudah menerima pengaduan Anda")
        assert "Di RT berapa" in one("meminta keterangan tambahan")
        assert "Truk dijadwalkan" in one("DLH menanggapi")
        one("batas waktu untuk menyelesaikan pengaduan Anda")
        one("dinaikkan (tingkat 1)")
        assert "Jadwal angkut" in one("ditemukan maladministrasi")
        assert "internal note" not in " ".join(texts)
        assert "Belum beres" in one("menyatakan pengaduan Anda")
        last = next(c for c in api.sent(7350012001) if "menyatakan pengaduan" in c.text)
        assert [d for _, d in last.buttons] == [f"rate:{cid}:{n}" for n in range(1, 6)] + [
            f"disp:{cid}"]
        info = next(c for c in api.sent(7350012001) if "keterangan tambahan" in c.text)
        assert info.buttons == [("Jawab pertanyaan", f"ans:{cid}")]
        # The sender marks a row sent after the Bot API answered, so the last mark may
        # land just after the stand-in saw the message: wait for it (hang guard 10 s).
        sql = "SELECT sent_at, attempts FROM intake.telegram_notifications"
        deadline = time.monotonic() + 10
        rows = await bot.pool.fetch(sql)
        while not all(r["sent_at"] for r in rows) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            rows = await bot.pool.fetch(sql)
        assert len(rows) == 8 and all(r["sent_at"] and r["attempts"] == 1 for r in rows), rows
        # Never the chat id on a topic.
        msgs = await read_topic(settings.kafka_bootstrap or "", topics.INTAKE,
                                until=lambda m: len(m) >= 1)
        assert all("7350012001" not in m["_raw"] for m in msgs)


async def test_english_notification(settings: Settings, api: BotApi) -> None:
    user = Updates(2002, language_code="en")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2002))
        await emit(settings, cid, routed(code))
        texts = await notified(bot, 2002, base + 1)
        assert f"Your complaint {code} was forwarded to DLH" in texts[-1]


async def test_answering_the_agency_question_in_the_chat(settings: Settings,
                                                       api: BotApi) -> None:
    user = Updates(2003, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2003))
        await emit(settings, cid, routed(code))
        await emit(settings, cid, p.TicketInfoRequested(
            agency=AGENCY, question="Di RT berapa?", paused_at=datetime.now(UTC)))
        await notified(bot, 2003, base + 2)
        assert await bot.pool.fetchval("SELECT status FROM intake.complaints") == "waiting_info"
        # The reply button first (it says what to do), then the next free text answers.
        hint = await bot.say(user, user.button(f"ans:{cid}"))
        assert "Ketik jawaban Anda" in hint.text
        thanks = await bot.say(user, user.text("RT 04 RW 02, dekat masjid."))
        assert "jawaban Anda sudah diteruskan" in thanks.text
        assert await bot.pool.fetchval("SELECT status FROM intake.complaints") == "assigned"
        msgs = await read_topic(settings.kafka_bootstrap or "", topics.INTAKE,
                                until=lambda m: any(x.get("type") == "complaint.info_added"
                                                    for x in m))
        added = next(m for m in msgs if m["type"] == "complaint.info_added")
        assert added["payload"]["message"] == "RT 04 RW 02, dekat masjid."
        assert added["complaint_id"] == cid
        # Answered: the next free text is a normal message again.
        idle = await bot.say(user, user.text("terima kasih"))
        assert "/lapor" in idle.text


async def test_answer_by_the_next_free_text(settings: Settings, api: BotApi) -> None:
    user = Updates(2004, language_code="en")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2004))
        # The lifecycle's order: an agency has it before it can ask.
        await emit(settings, cid, routed(code))
        await emit(settings, cid, p.TicketInfoRequested(
            agency=AGENCY, question="Which street?", paused_at=datetime.now(UTC)))
        await notified(bot, 2004, base + 2)
        thanks = await bot.say(user, user.text("Jalan Gatot Subroto 12"))
        assert "your answer was passed on" in thanks.text
        timeline = await bot.pool.fetch("SELECT kind, data FROM intake.timeline"
                                        " WHERE kind = 'info_added'")
        assert timeline[0]["data"]["message"] == "Jalan Gatot Subroto 12"
        # A second question answered with a photo (and its caption).
        base = len(api.sent(2004))
        await emit(settings, cid, p.TicketInfoRequested(
            agency=AGENCY, question="A photo, please?", paused_at=datetime.now(UTC)))
        await notified(bot, 2004, base + 1)
        api.files["ans"] = PNG
        photo = user.photo("ans", len(PNG))
        photo["message"]["caption"] = "Here it is"
        thanks = await bot.say(user, photo)
        assert "your answer was passed on" in thanks.text
        stored = await bot.pool.fetch("SELECT content_type FROM intake.photos")
        assert [r["content_type"] for r in stored] == ["image/png"]
        timeline = await bot.pool.fetch("SELECT data FROM intake.timeline"
                                        " WHERE kind = 'info_added' ORDER BY id")
        assert (timeline[1]["data"]["message"], timeline[1]["data"]["photos"]) == (
            "Here it is", 1)


async def test_rating_after_resolution(settings: Settings, api: BotApi) -> None:
    user = Updates(2005, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2005))
        await emit(settings, cid, routed(code))
        await emit(settings, cid, resolved())
        await notified(bot, 2005, base + 2)
        thanks = await bot.say(user, user.button(f"rate:{cid}:4"))
        assert "4 dari 5" in thanks.text
        row = await bot.pool.fetchrow("SELECT status, rating, disputed FROM intake.complaints")
        assert tuple(row) == ("resolved", 4, False)
        # A second rating of the same resolution is refused...
        again = await bot.say(user, user.button(f"rate:{cid}:1"))
        assert "tidak dapat diberikan sekarang" in again.text
        # ...but the rating does not rule out a dispute in the window: it reopens.
        await bot.say(user, user.button(f"disp:{cid}"))
        row = await bot.pool.fetchrow("SELECT status, rating, disputed FROM intake.complaints")
        assert tuple(row) == ("reopened", 4, True)
        # Someone else's complaint id in a forged button does nothing.
        other = Updates(2099, language_code="id")
        forged = await bot.say(other, other.button(f"rate:{cid}:1"))
        assert "tidak berlaku" in forged.text
        assert await bot.pool.fetchval("SELECT rating FROM intake.complaints") == 4


async def test_dispute_while_the_window_is_open(settings: Settings, api: BotApi) -> None:
    user = Updates(2006, language_code="en")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2006))
        await emit(settings, cid, routed(code))
        await emit(settings, cid, resolved())
        await notified(bot, 2006, base + 2)
        noted = await bot.say(user, user.button(f"disp:{cid}"))
        assert "goes to the oversight panel" in noted.text
        assert await bot.pool.fetchval("SELECT status FROM intake.complaints") == "reopened"
        msgs = await read_topic(settings.kafka_bootstrap or "", topics.INTAKE,
                                until=lambda m: any(x.get("type") == "complaint.feedback_given"
                                                    for x in m))
        fb = next(m for m in msgs if m["type"] == "complaint.feedback_given")
        assert fb["payload"]["dispute"] is True


async def test_no_dispute_button_after_the_window(settings: Settings, api: BotApi) -> None:
    user = Updates(2007, language_code="en")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2007))
        await emit(settings, cid, routed(code))
        await emit(settings, cid, resolved(dispute_days=-1))
        await notified(bot, 2007, base + 2)
        last = api.sent(2007)[-1]
        assert [d for _, d in last.buttons] == [f"rate:{cid}:{n}" for n in range(1, 6)]
        assert "Not fixed" not in last.text
        refused = await bot.say(user, user.button(f"disp:{cid}"))
        assert "not possible now" in refused.text
        assert await bot.pool.fetchval("SELECT status FROM intake.complaints") == "resolved"


async def test_a_user_who_blocked_the_bot_is_not_retried(settings: Settings,
                                                       api: BotApi) -> None:
    user = Updates(2008, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2008))
        api.blocked.add(2008)
        await emit(settings, cid, routed(code))
        await api.wait_sent(2008, base + 1)  # the one attempt, answered 403
        await wait_row(bot, "failed_at IS NOT NULL")
        assert await bot.pool.fetchval(
            "SELECT blocked_at IS NOT NULL FROM intake.telegram_chats WHERE chat_id = 2008")
        await emit(settings, cid, p.TicketAcknowledged(agency=AGENCY, deadlines=p.Deadlines()))
        await wait_row(bot, "failed_at IS NOT NULL", n=2)
        assert len(api.sent(2008)) == base + 1  # the second one was not even tried
        reasons = await bot.pool.fetch("SELECT last_error, attempts FROM "
                                       "intake.telegram_notifications ORDER BY id")
        assert [r["last_error"] for r in reasons] == ["blocked", "blocked"]
        # Writing to the bot again lifts the block.
        api.blocked.discard(2008)
        await bot.say(user, user.text("/bantuan"))
        assert await bot.pool.fetchval(
            "SELECT blocked_at FROM intake.telegram_chats WHERE chat_id = 2008") is None


async def test_blocking_reported_by_telegram_marks_the_chat(settings: Settings,
                                                          api: BotApi) -> None:
    user = Updates(2009)
    async with running_bot(bot_settings(settings, api), api) as bot:
        await bot.say(user, user.text("/start"))
        assert await bot.post(user.blocked_bot()) == 200
        assert await bot.pool.fetchval(
            "SELECT blocked_at IS NOT NULL FROM intake.telegram_chats WHERE chat_id = 2009")


async def wait_row(bot: BotClient, where: str, n: int = 1, within: float = 15.0) -> None:
    async def enough() -> bool:
        count = await bot.pool.fetchval(
            f"SELECT count(*) FROM intake.telegram_notifications WHERE {where}")  # noqa: S608
        return bool(count >= n)

    await eventually(enough, within, f"{n} notification rows with {where}")


async def test_a_stop_while_telegram_answers_records_the_message_sent(
        settings: Settings, api: BotApi) -> None:
    # Intake stops (a deploy) while Telegram is still answering a sendMessage: the
    # sender finishes that one and records it sent, and hands the rest of its batch
    # back due now, before the pool closes. Cancelled instead, the delivered message
    # stayed unrecorded (sent again after the lease) and the batch waited a minute.
    user = Updates(2011, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2011))
        api.slow[2011] = 1.5
        await emit(settings, cid, routed(code))
        await emit(settings, cid, p.TicketAcknowledged(agency=AGENCY, deadlines=p.Deadlines()))
        await api.wait_sent(2011, base + 1)  # asked; Telegram answers 1.5 s later
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT sent_at, next_attempt_at <= now() AS due, attempts"
            " FROM intake.telegram_notifications ORDER BY id")
    finally:
        await conn.close()
    assert rows and rows[0]["sent_at"] is not None, rows
    for row in rows[1:]:
        assert row["sent_at"] is not None or (row["due"] and row["attempts"] == 0), rows


async def test_telegram_429_is_retried_after_retry_after(settings: Settings,
                                                       api: BotApi) -> None:
    user = Updates(2010, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2010))
        api.flood.append(1)
        await emit(settings, cid, routed(code))
        await wait_row(bot, "last_error LIKE '429%'")
        refused_at = time.monotonic()
        await wait_row(bot, "sent_at IS NOT NULL")
        waited = time.monotonic() - refused_at
        tries = api.sent(2010)[base:]
        assert len(tries) == 2 and tries[0].text == tries[1].text
        assert waited >= 0.7  # retry_after was 1 s (less what passed before we looked)
        row = await bot.pool.fetchrow("SELECT attempts, sent_at FROM "
                                      "intake.telegram_notifications")
        assert row["attempts"] == 2 and row["sent_at"] is not None


async def test_no_notification_is_lost_while_telegram_is_unreachable(
        settings: Settings, api: BotApi) -> None:
    user = Updates(2011, language_code="id")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2011))
        api.down = True
        await emit(settings, cid, routed(code))
        await emit(settings, cid, p.TicketAcknowledged(agency=AGENCY, deadlines=p.Deadlines()))
        await wait_row(bot, "attempts >= 1 AND last_error IS NOT NULL", n=2)
        assert len(api.sent(2011)) == base
        api.down = False
        texts = await notified(bot, 2011, base + 2, within=20)
        assert "diteruskan ke DLH" in texts[base] and "sudah menerima" in texts[base + 1]

        # Telegram has a message before the sender records it sent (a CI run read the
        # row in between): every row is recorded sent, soon.
        async def none_unsent() -> bool:
            return await bot.pool.fetchval(
                "SELECT count(*) FROM intake.telegram_notifications WHERE sent_at IS NULL") == 0

        await eventually(none_unsent, 15, "every notification recorded sent")


async def test_two_intake_replicas_share_chats_and_the_queue(settings: Settings,
                                                           api: BotApi) -> None:
    """Behind the webhook any replica may get any update, and both run a sender."""
    user = Updates(2012, language_code="en")
    api.files.update(x=image_bytes(color=(1, 1, 1)), y=image_bytes(color=(2, 2, 2)))
    s = bot_settings(settings, api)
    async with running_bot(s, api) as a, running_bot(s, api) as b:
        await a.say(user, user.text("/lapor"))
        await b.say(user, user.button("r:MDN"))
        await a.say(user, user.button("c:sampah"))
        await b.say(user, user.text("Rubbish has not been collected for two weeks."))
        await a.say(user, user.button("skip"))
        # Two photos at the same instant, one to each replica: both kept.
        before = len(api.sent(2012))
        await asyncio.gather(a.post(user.photo("x", 94)), b.post(user.photo("y", 94)))
        await api.wait_sent(2012, before + 2)
        assert await a.pool.fetchval("SELECT count(*) FROM intake.telegram_draft_photos") == 2
        await b.say(user, user.button("done"))
        await a.say(user, user.button("pv:anonymous"))
        await b.say(user, user.button("ok"))
        row = await a.pool.fetchrow("SELECT id, tracking_code FROM intake.complaints")
        assert await a.pool.fetchval("SELECT count(*) FROM intake.photos") == 2
        cid = str(row["id"])
        base = len(api.sent(2012))
        for _ in range(3):
            await emit(settings, cid, p.TicketResponded(agency=AGENCY, message="On it."))
        await wait_row(a, "sent_at IS NOT NULL", n=3)
        # Two senders, SKIP LOCKED: each notification went out exactly once.
        assert len(api.sent(2012)) == base + 3
        assert all(row["tracking_code"] in c.text for c in api.sent(2012)[base:])


async def test_status_says_the_clock_waits_for_the_citizen(settings: Settings,
                                                           api: BotApi) -> None:
    user = Updates(2010, language_code="en")
    async with running_bot(bot_settings(settings, api), api) as bot:
        cid, code, _ = await bot.report(user)
        base = len(api.sent(2010))
        await emit(settings, cid, routed(code))
        await emit(settings, cid, p.TicketInfoRequested(
            agency=AGENCY, question="Which street?", paused_at=datetime.now(UTC)))
        await notified(bot, 2010, base + 2)
        status = await bot.say(user, user.text(f"/status {code}"))
        assert "Waiting for you" in status.text and "OVERDUE" not in status.text
