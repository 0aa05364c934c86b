"""E-mail notifications end to end: a real SMTP server (aiosmtpd) on 127.0.0.1, the
intake service on a real socket, router and oversight events published on the test
broker; what arrives at the server is parsed and read.

- a web-form complaint with an address gets one e-mail per visible change, in
  Indonesian with local times and the status link, once each across a restart of
  intake and a replayed event;
- the mail server stopped, then back: everything queued meanwhile arrives, once;
- no e-mail (and nothing queued) without ``AWASI_SMTP_URL``;
- an anonymous reporter (no address kept, whatever was typed) gets none.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller

from awasi.events import payloads as p
from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.settings import Settings, SettingsError
from tests.support.intake import csrf_of, form_data
from tests.support.kafka import publish
from tests.support.services import running_service
from tests.support.wait import eventually

AGENCY = "MDN-PUPR"
ADDRESS = "budi@example.id"
SENDER = "Awasi Kota Medan <awasi@medan.example>"
PUBLIC_URL = "https://awasi.medan.example"
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@dataclass
class Inbox:
    """What the SMTP server received (filled from the server's thread)."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # A slow server: how long it takes to accept a message, and how many it has
    # begun to accept.
    delay_s: float = 0.0
    begun: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.begun += 1
        await asyncio.sleep(self.delay_s)
        with self.lock:
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def all(self) -> list[tuple[list[str], EmailMessage]]:
        with self.lock:
            return list(self.messages)

    async def wait(self, n: int, within: float = 30.0) -> list[tuple[list[str], EmailMessage]]:
        async def enough() -> bool:
            return len(self.all()) >= n

        await eventually(enough, within)
        return self.all()


class SmtpServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        with socket.socket() as probe:  # a free port, kept across an outage
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def mail_settings(settings: Settings, server: SmtpServer) -> Settings:
    return settings.with_(smtp_url=f"smtp://127.0.0.1:{server.port}", mail_from=SENDER,
                          intake_url=PUBLIC_URL, rate_limit_per_minute=10_000)


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def later(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


async def emit(settings: Settings, cid: str, payload: p.Payload,
               topic: str = topics.ROUTER) -> Envelope:
    env = Envelope.build(payload, complaint_id=cid,
                         producer="oversight" if topic == topics.OVERSIGHT else "router")
    await publish(settings.kafka_bootstrap or "", topic, env.to_bytes(), key=cid.encode())
    return env


async def republish(settings: Settings, env: Envelope, topic: str = topics.ROUTER) -> None:
    await publish(settings.kafka_bootstrap or "", topic, env.to_bytes(),
                  key=env.complaint_id.encode())


async def file_by_form(client: TestClient, **over: str) -> str:
    csrf = csrf_of(await (await client.get("/")).text())
    r = await client.post("/", data=form_data(csrf, **over), allow_redirects=False)
    assert r.status == 303, await r.text()
    return r.headers["Location"].rsplit("/", 1)[1]


async def query(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def complaint_id(settings: Settings, code: str) -> str:
    rows = await query(settings, "SELECT id FROM intake.complaints WHERE tracking_code = $1",
                       code)
    return str(rows[0]["id"])


async def applied(settings: Settings, env: Envelope, within: float = 30.0) -> None:
    """Wait until intake's consumer applied ``env``."""
    async def done() -> list[asyncpg.Record]:
        return await query(settings, "SELECT 1 FROM intake.processed_events"
                           " WHERE consumer = 'intake' AND event_id = $1", env.event_id)

    await eventually(done, within)


def routed(code: str) -> p.ComplaintRouted:
    return p.ComplaintRouted(tracking_code=code, region="MDN", category="jalan-rusak",
                             agency=AGENCY, rule="category:MDN:jalan-rusak",
                             deadlines=p.Deadlines(acknowledge_by=later(5),
                                                   resolve_by=later(14)))


def acknowledged() -> p.TicketAcknowledged:
    return p.TicketAcknowledged(agency=AGENCY, deadlines=p.Deadlines(resolve_by=later(14)))


async def test_every_visible_change_is_mailed_once_across_a_restart(
        settings: Settings, smtp: SmtpServer) -> None:
    s = mail_settings(settings, smtp)
    async with running_service("intake", s) as client:
        code = await file_by_form(client)
        cid = await complaint_id(s, code)
        await emit(s, cid, routed(code))
        ack = await emit(s, cid, acknowledged())
        await emit(s, cid, p.DeadlineWarning(kind="resolve", agency=AGENCY, due_at=later(1)),
                   topics.OVERSIGHT)  # the staff's reminder: no e-mail
        await emit(s, cid, p.TicketInfoRequested(agency=AGENCY, question="Di depan nomor berapa?",
                                                 paused_at=datetime.now(UTC)))
        await smtp.inbox.wait(3)
    # Intake restarts: what was sent is not sent again; what comes next is.
    async with running_service("intake", s):
        await republish(s, ack)  # a redelivered event changes nothing
        await emit(s, cid, p.TicketResponded(agency=AGENCY,
                                                 message="Tim sudah meninjau <b>lokasi</b>."))
        await emit(s, cid, p.FindingRecorded(outcome="maladministration", published=False,
                                             recommendation="internal note"),
                   topics.OVERSIGHT)  # unpublished: not news for the citizen
        done = await emit(s, cid, p.TicketResolved(
            agency=AGENCY, note="Lubang sudah ditambal.",
            deadlines=p.Deadlines(dispute_until=later(10))))
        await smtp.inbox.wait(5)
        await applied(s, done)

        async def all_marked_sent() -> bool:
            # The server has a message before the sender records it sent: wait for
            # the record, or a stop in between would (rightly) send it again.
            rows = await query(s, "SELECT sent_at FROM intake.email_notifications")
            return len(rows) == 5 and all(r["sent_at"] is not None for r in rows)

        await eventually(all_marked_sent, 30)
        await asyncio.sleep(2.0)  # time for a duplicate to show up, if there were one
    received = smtp.inbox.all()
    assert len(received) == 5, [m["Subject"] for _, m in received]

    subjects = [m["Subject"] for _, m in received]
    for part in (f"Pengaduan Anda {code} diteruskan ke Dinas PUPR",
                 f"Dinas PUPR sedang menangani pengaduan Anda {code}",
                 f"Dinas PUPR meminta keterangan tentang pengaduan Anda {code}",
                 f"Dinas PUPR menanggapi pengaduan Anda {code}",
                 f"Pengaduan Anda {code} dinyatakan selesai"):
        assert subjects.count(part) == 1, (part, subjects)
    ids = {m["Message-ID"] for _, m in received}
    rows = await query(s, "SELECT id, sent_at FROM intake.email_notifications ORDER BY id")
    assert len(rows) == 5 and all(r["sent_at"] is not None for r in rows)
    assert ids == {f"<awasi-mail-{r['id']}@medan.example>" for r in rows}
    for rcpt, m in received:
        assert rcpt == [ADDRESS] and m["To"] == ADDRESS and m["From"] == SENDER
        assert m["Content-Language"] == "id"
        body = body_of(m)
        assert f"{PUBLIC_URL}/status/{code}" in body
        assert not ISO.search(body), body  # local times, never raw ISO
        # Nothing personal but the address it goes to: no name, no phone.
        for private in ("Budi Santoso", "811 222", "internal note"):
            assert private not in body and private not in m["Subject"]
    bodies = {m["Subject"]: body_of(m) for _, m in received}
    routed_body = bodies[f"Pengaduan Anda {code} diteruskan ke Dinas PUPR"]
    assert re.search(r"\d{1,2} \w{3} \d{4}, \d{2}\.\d{2} WIB", routed_body), routed_body
    assert "Di depan nomor berapa?" in bodies[
        f"Dinas PUPR meminta keterangan tentang pengaduan Anda {code}"]
    assert "Lubang sudah ditambal." in bodies[f"Pengaduan Anda {code} dinyatakan selesai"]
    # And as simple HTML, escaped, with the same link.
    responded = next(m for _, m in received if "menanggapi" in m["Subject"])
    html_part = responded.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert f'<a href="{PUBLIC_URL}/status/{code}">' in html
    assert "meninjau &lt;b&gt;lokasi&lt;/b&gt;" in html and "<b>" not in html


async def test_a_stop_while_the_server_accepts_a_message_records_it_sent(
        settings: Settings, smtp: SmtpServer) -> None:
    # Intake is stopped (a deploy) while the mail server is still taking a message.
    # The sender finishes it and records it sent before the pool closes: cancelled
    # instead, it left the row leased for ten minutes with the message delivered, so
    # a restart neither knew it was sent nor could send the next ones in order (a
    # CI run of the restart test above failed on it).
    s = mail_settings(settings, smtp)
    smtp.inbox.delay_s = 1.5
    async with running_service("intake", s) as client:
        code = await file_by_form(client)
        await emit(s, await complaint_id(s, code), routed(code))

        async def begun() -> bool:
            return smtp.inbox.begun == 1

        await eventually(begun, 30)
    assert len(smtp.inbox.all()) == 1
    rows = await query(s, "SELECT sent_at FROM intake.email_notifications")
    assert len(rows) == 1 and rows[0]["sent_at"] is not None


async def test_mail_server_outage_then_recovery_delivers_everything_once(
        settings: Settings, smtp: SmtpServer) -> None:
    s = mail_settings(settings, smtp)
    async with running_service("intake", s) as client:
        smtp.stop()  # the mail server is down
        r = await client.post("/api/v1/complaints", headers={"Accept-Language": "en"}, json={
            "region": "MDN", "category": "jalan-rusak", "description": "Lubang besar di jalan.",
            "privacy": "confidential", "reporter": {"email": ADDRESS}})
        assert r.status == 201
        code = (await r.json())["tracking_code"]
        cid = await complaint_id(s, code)
        await emit(s, cid, routed(code))
        await emit(s, cid, acknowledged())

        async def tried() -> bool:
            rows = await query(s, "SELECT attempts, last_error, sent_at"
                               " FROM intake.email_notifications")
            return len(rows) == 2 and all(r["attempts"] >= 1 and r["last_error"]
                                          and r["sent_at"] is None for r in rows)

        await eventually(tried, 30)
        assert smtp.inbox.all() == []
        smtp.start()  # back, on the same port
        received = await smtp.inbox.wait(2, within=60)
        await asyncio.sleep(2.0)
    assert len(smtp.inbox.all()) == 2
    subjects = sorted(m["Subject"] for _, m in received)
    # In the language the citizen used (the API call's Accept-Language).
    assert subjects == sorted([f"Your complaint {code} was forwarded to Dinas PUPR",
                               f"Dinas PUPR is working on your complaint {code}"])
    assert all(m["Content-Language"] == "en" for _, m in received)
    # The link opens the status page in English too.
    assert all(f"{PUBLIC_URL}/status/{code}?lang=en" in body_of(m) for _, m in received)
    assert all(re.search(r"\d{2}:\d{2} WIB", body_of(m)) for _, m in received
               if "forwarded" in m["Subject"])
    rows = await query(s, "SELECT sent_at FROM intake.email_notifications")
    assert all(r["sent_at"] is not None for r in rows)


async def test_no_email_without_the_setting(settings: Settings, smtp: SmtpServer) -> None:
    s = settings.with_(rate_limit_per_minute=10_000)  # AWASI_SMTP_URL unset
    assert s.smtp() is None
    async with running_service("intake", s) as client:
        code = await file_by_form(client)
        env = await emit(s, await complaint_id(s, code), routed(code))
        await applied(s, env)
        await asyncio.sleep(1.0)
    assert await query(s, "SELECT 1 FROM intake.email_notifications") == []
    assert smtp.inbox.all() == []


async def test_anonymous_reporters_get_no_email(settings: Settings, smtp: SmtpServer) -> None:
    s = mail_settings(settings, smtp)
    async with running_service("intake", s) as client:
        # Typed an address, chose anonymous: nothing about them is kept, so no e-mail.
        anonymous = await file_by_form(client, privacy="anonymous", email="anon@example.id")
        named = await file_by_form(client, privacy="named", email="siti@example.id")
        env = await emit(s, await complaint_id(s, anonymous), routed(anonymous))
        await emit(s, await complaint_id(s, named), routed(named))
        await applied(s, env)
        received = await smtp.inbox.wait(1)
        await asyncio.sleep(1.5)
    assert len(smtp.inbox.all()) == 1
    rcpt, message = received[0]
    assert rcpt == ["siti@example.id"] and named in message["Subject"]
    rows = await query(s, "SELECT c.tracking_code FROM intake.email_notifications n"
                       " JOIN intake.complaints c ON c.id = n.complaint_id")
    assert [r["tracking_code"] for r in rows] == [named]


def test_smtp_settings_are_checked_at_start() -> None:
    ok = Settings.from_env({"AWASI_SMTP_URL": "smtp://u%40x:p%3Aw@mail.example:2525"
                                              "?starttls=true",
                            "AWASI_MAIL_FROM": "Awasi <awasi@kota.example>"})
    config = ok.smtp()
    assert config is not None
    assert (config.host, config.port, config.username, config.password, config.starttls,
            config.implicit_tls) == ("mail.example", 2525, "u@x", "p:w", True, False)
    tls = Settings.from_env({"AWASI_SMTP_URL": "smtps://mail.example",
                             "AWASI_MAIL_FROM": "awasi@kota.example"}).smtp()
    assert tls is not None and (tls.port, tls.implicit_tls) == (465, True)
    with pytest.raises(SettingsError, match="AWASI_MAIL_FROM"):
        Settings.from_env({"AWASI_SMTP_URL": "smtp://mail.example"})
    with pytest.raises(SettingsError, match="AWASI_SMTP_URL") as e:
        Settings.from_env({"AWASI_SMTP_URL": "http://user:hunter2@mail.example",
                           "AWASI_MAIL_FROM": "awasi@kota.example"})
    assert "hunter2" not in str(e.value)  # the password is never echoed
    with pytest.raises(SettingsError, match="AWASI_MAIL_FROM"):
        Settings.from_env({"AWASI_SMTP_URL": "smtp://mail.example",
                           "AWASI_MAIL_FROM": "not an address"})


async def test_a_closed_complaint_invites_to_the_agencys_satisfaction_survey(
        settings: Settings, smtp: SmtpServer) -> None:
    # Every citizen whose complaint closes is invited (docs/EVALUATION.md), on the
    # channel they came by: here e-mail, in the language they wrote in.
    s = mail_settings(settings, smtp)
    async with running_service("intake", s) as client:
        code = await file_by_form(client)
        cid = await complaint_id(s, code)
        await emit(s, cid, routed(code))
        await emit(s, cid, p.TicketResolved(agency=AGENCY, note="Lubang sudah ditambal.",
                                            deadlines=p.Deadlines(dispute_until=later(10))))
        before = len(await smtp.inbox.wait(2))
        closed = await emit(s, cid, p.CaseClosed(reason="dispute_window_passed"),
                            topics.OVERSIGHT)
        await applied(s, closed)
        received = await smtp.inbox.wait(before + 1)
    last = body_of(received[-1][1])
    assert f"{PUBLIC_URL}/survey?agency={AGENCY}" in last
    assert "survei kepuasan" in last and "PUPR" in last
    # Earlier news carried no invitation.
    assert all("/survey?" not in body_of(m) for _, m in received[:-1])
