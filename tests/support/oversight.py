"""Helpers shared by the oversight tests: event builders, a transaction-scoped way to
feed the consumer's handler (``feed``; tests/test_oversight_consumer_path.py proves
the real broker and ``IdempotentConsumer`` give the same result), outbox and queue
probes, and the app on a real socket."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp.test_utils import TestClient

from awasi.catalog import Catalog, load_catalog
from awasi.db import create_pool
from awasi.events.envelope import Envelope
from awasi.events.payloads import (
    ComplaintFeedbackGiven,
    ComplaintRouted,
    ComplaintSubmitted,
    ComplaintWithdrawn,
    Deadlines,
    Payload,
    TicketAcknowledged,
    TicketClockResumed,
    TicketInfoRequested,
    TicketReopened,
    TicketResolved,
    TicketTransferred,
)
from awasi.identity import add_user
from awasi.settings import Settings
from awasi.web import keys as web_keys
from services.oversight.app import create_app
from services.oversight.clock import ManualClock
from services.oversight.domain import Context, apply_event
from tests.support.kafka import publish
from tests.support.services import running_app
from tests.support.wait import eventually  # noqa: F401 - re-exported for the oversight tests

WIB = ZoneInfo("Asia/Jakarta")
# Monday 23 November 2026, 09:00 WIB: no public holiday in the two weeks after.
MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=WIB)
AGENCY = "MDN-DISDUKCAPIL"
OTHER_AGENCY = "MDN-BKPSDM"
# Acknowledge by Wednesday 09:00 WIB: 48 working hours after Monday 09:00. The
# warning at 80% is 38.4 h in: Tuesday 23:24 WIB.
ACK_DUE = datetime(2026, 11, 25, 9, 0, tzinfo=WIB)
ACK_WARN = datetime(2026, 11, 24, 23, 24, tzinfo=WIB)
RESOLVE_DUE = datetime(2026, 12, 2, 9, 0, tzinfo=WIB)
# Level 2: five working days after the breach (demo policy): Thursday 26, Friday 27,
# Monday 30, Tuesday 1 and Wednesday 2 December, so at the end of that Wednesday.
ACK_LEVEL2 = datetime(2026, 12, 3, 0, 0, tzinfo=WIB)


def demo_catalog() -> Catalog:
    return load_catalog(Settings().catalog)


def env(payload: Payload, cid: str, at: datetime, producer: str = "router") -> Envelope:
    return Envelope.build(payload, complaint_id=cid, producer=producer, occurred_at=at)


def submitted(cid: str, at: datetime, code: str | None = None,
              region: str = "MDN") -> Envelope:
    return env(ComplaintSubmitted(
        tracking_code=code or f"AWS-{cid[-6:].upper()}", region=region,
        category="adminduk-ktp", description="KTP belum jadi", privacy="anonymous",
        reporter_ref="ref-" + cid, submitted_at=at), cid, at, producer="intake")


def routed(cid: str, at: datetime, ack: datetime | None, resolve: datetime | None,
           agency: str = AGENCY, code: str | None = None, region: str = "MDN") -> Envelope:
    return env(ComplaintRouted(
        tracking_code=code or f"AWS-{cid[-6:].upper()}", region=region,
        category="adminduk-ktp", agency=agency, rule="category:MDN:adminduk-ktp",
        deadlines=Deadlines(acknowledge_by=ack, resolve_by=resolve), warning_share=0.8),
        cid, at)


def acknowledged(cid: str, at: datetime, resolve: datetime | None = None,
                 agency: str = AGENCY) -> Envelope:
    return env(TicketAcknowledged(agency=agency, deadlines=Deadlines(resolve_by=resolve)),
               cid, at)


def info_requested(cid: str, at: datetime) -> Envelope:
    return env(TicketInfoRequested(agency=AGENCY, question="Nomor NIK?", paused_at=at), cid, at)


def resolved(cid: str, at: datetime, agency: str = AGENCY) -> Envelope:
    return env(TicketResolved(agency=agency, note="Selesai",
                              deadlines=Deadlines(dispute_until=at + timedelta(days=14))),
               cid, at)


def transferred(cid: str, at: datetime, ack: datetime, resolve: datetime) -> Envelope:
    return env(TicketTransferred(from_agency=AGENCY, agency=OTHER_AGENCY, reason="salah OPD",
                                 deadlines=Deadlines(acknowledge_by=ack, resolve_by=resolve)),
               cid, at)


def reopened(cid: str, at: datetime, resolve: datetime, agency: str = AGENCY) -> Envelope:
    return env(TicketReopened(agency=agency, reason="dispute",
                              deadlines=Deadlines(resolve_by=resolve)), cid, at)


def feedback(cid: str, at: datetime, rating: int | None, dispute: bool = False) -> Envelope:
    return env(ComplaintFeedbackGiven(rating=rating, dispute=dispute), cid, at,
               producer="intake")


def withdrawn(cid: str, at: datetime) -> Envelope:
    return env(ComplaintWithdrawn(reason="sudah selesai sendiri"), cid, at, producer="intake")


def clock_resumed(cid: str, at: datetime, ack: datetime | None,
                  resolve: datetime | None) -> Envelope:
    return env(TicketClockResumed(agency=AGENCY, resumed_at=at,
                                  deadlines=Deadlines(acknowledge_by=ack, resolve_by=resolve)),
               cid, at)


async def feed(pool: asyncpg.Pool, ctx: Context, *envelopes: Envelope) -> None:
    """Apply events as the idempotent consumer would: dedupe record + effect, one
    transaction each."""
    for e in envelopes:
        async with pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO oversight.processed_events (consumer, event_id) VALUES"
                " ('oversight', $1) ON CONFLICT DO NOTHING RETURNING 1", e.event_id)
            if inserted:
                await apply_event(conn, ctx, e)


async def outbox_events(pool: asyncpg.Pool, cid: str | None = None) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT envelope FROM oversight.outbox WHERE ($1::text IS NULL OR key = $1) ORDER BY id",
        cid)
    return [r["envelope"] for r in rows]


def types(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(e["type"], e["payload"].get("level", e["payload"].get("kind"))) for e in events]


async def open_pool(dsn: str) -> asyncpg.Pool:
    return await create_pool(dsn, min_size=1, max_size=4)


def new_cid() -> str:
    return uuid.uuid4().hex


def make_ctx(clock: ManualClock | None = None) -> tuple[Context, ManualClock]:
    clock = clock or ManualClock(MONDAY_9)
    return Context(catalog=demo_catalog(), clock=clock), clock


# --- the app on a real socket ---------------------------------------------------------

@contextlib.asynccontextmanager
async def oversight(settings: Settings, clock: ManualClock) -> AsyncIterator[TestClient]:
    async with running_app(create_app(settings, clock=clock)) as client:
        yield client


def pool_of(client: TestClient) -> asyncpg.Pool:
    return client.server.app[web_keys.POOL]


async def login(client: TestClient, username: str, role: str, agency: str | None = None) -> str:
    await add_user(pool_of(client), username=username, password="rahasia-123", role=role,
                   agency=agency)
    r = await client.post("/api/v1/auth/login",
                          json={"username": username, "password": "rahasia-123"})
    assert r.status == 200, await r.text()
    return str((await r.json())["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def send(settings: Settings, topic: str, envelope: Any) -> None:
    assert settings.kafka_bootstrap
    await publish(settings.kafka_bootstrap, topic, envelope.to_bytes(),
                  key=envelope.complaint_id.encode())
