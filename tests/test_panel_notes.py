"""The panel console shows a case's internal notes, read from the real router over
HTTP with the panel member's own token: author, their role and agency, the time in
the region's zone, in both languages, and no citizen data. When the router is down
or does not answer in time, the case page still renders and says the notes are
unavailable. The same in Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from awasi import timefmt
from awasi.db import create_pool
from awasi.embedded import free_port
from awasi.identity import SESSION_COOKIE, add_user
from awasi.settings import Settings
from tests.support.router import (
    PASSWORD,
    bearer,
    create_users,
    login,
    router_settings,  # noqa: F401 - fixture
    send,
    submitted,
    wait_ticket,
)
from tests.support.services import running_app, running_service
from tests.support.wait import eventually

pytestmark = [
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]

NOTE = "Sudah survei lokasi bersama UPT Jalan; perbaikan dijadwalkan minggu depan"
SECOND = "Kepala dinas minta foto sesudah perbaikan"


async def _case_with_notes(settings: Settings, router: TestClient) -> dict[str, Any]:
    """A Sorong road complaint routed by the real router to SRG-PUPR, with two notes
    (staff, then a head); the tokens and what the page must show."""
    await create_users(settings.database_url or "")
    pool = await create_pool(settings.database_url or "", min_size=1, max_size=1)
    try:
        await add_user(pool, username="srg.pupr.head", password=PASSWORD, role="head",
                       agency="SRG-PUPR")
    finally:
        await pool.close()
    tok = {u: await login(router, u) for u in ("srg.pupr", "srg.pupr.head", "panel.demo",
                                               "mdn.pupr")}
    env = submitted("SRG", "jalan-rusak", "Jalan berlubang dekat pasar Remu.",
                    title="Lubang besar")
    await send(settings.kafka_bootstrap or "", env)
    code = env.payload["tracking_code"]
    ticket = await wait_ticket(router, tok["srg.pupr"], code)
    written = []
    for who, body in (("srg.pupr", NOTE), ("srg.pupr.head", SECOND)):
        r = await router.post(f"/api/v1/tickets/{ticket['id']}/notes", json={"body": body},
                              headers=bearer(tok[who]))
        assert r.status == 201, await r.text()
        written.append(await r.json())
    return {"tok": tok, "code": code, "complaint_id": env.complaint_id,
            "reporter_ref": env.payload["reporter_ref"], "notes": written}


@contextlib.asynccontextmanager
async def _oversight(settings: Settings, panel_token: str,
                     code: str) -> AsyncIterator[TestClient]:
    """Oversight on a real socket, once its consumer has the case."""
    async with running_service("oversight", settings) as client:
        async def has_case() -> bool:
            r = await client.get(f"/api/v1/cases/{code}/timeline",
                                 headers=bearer(panel_token))
            return r.status == 200
        await eventually(has_case, what=f"oversight has case {code}")
        yield client


async def _page(client: TestClient, token: str, code: str, lang: str) -> tuple[int, str]:
    r = await client.get(f"/panel/cases/{code}", params={"lang": lang},
                         headers={"Cookie": f"{SESSION_COOKIE}={token}"})
    return r.status, await r.text()


async def test_case_page_shows_the_routers_notes(router_settings: Settings) -> None:  # noqa: F811
    settings = router_settings
    async with running_service("router", settings) as router:
        case = await _case_with_notes(settings, router)
        panel_token = case["tok"]["panel.demo"]
        code = case["code"]
        linked = settings.with_(router_internal_url=str(router.make_url("")).rstrip("/"))
        async with _oversight(linked, panel_token, code) as oversight:
            status, html = await _page(oversight, panel_token, code, "id")
            assert status == 200
            assert "Catatan internal" in html and NOTE in html and SECOND in html
            # Oldest first, each with its author, role and agency.
            assert html.index(NOTE) < html.index(SECOND)
            assert "srg.pupr (petugas perangkat daerah, Dinas PUPR Kota Sorong)" in html
            assert "srg.pupr.head (kepala perangkat daerah, Dinas PUPR Kota Sorong)" in html
            # The time in the region's zone (Sorong: WIT), as every page writes it.
            at = datetime.fromisoformat(case["notes"][0]["created_at"])
            assert timefmt.format_datetime(at, "Asia/Jayapura", "id") in html
            assert "WIT" in timefmt.format_datetime(at, "Asia/Jayapura", "id")
            # No citizen data: not even the reporter's pseudonymous reference.
            assert case["reporter_ref"] not in html
            assert "notes-unavailable" not in html

            status, html = await _page(oversight, panel_token, code, "en")
            assert status == 200
            assert "Internal notes" in html and NOTE in html
            assert "srg.pupr (agency staff, Dinas PUPR Kota Sorong)" in html
            assert timefmt.format_datetime(at, "Asia/Jayapura", "en") in html

            # The router decides with the caller's own token: staff of the agency
            # cannot use the panel's door (the page itself is the panel's alone).
            r = await router.get(f"/api/v1/cases/{case['complaint_id']}/notes",
                                 headers=bearer(case["tok"]["srg.pupr"]))
            assert r.status == 403
            r = await router.get(f"/api/v1/cases/{case['complaint_id']}/notes",
                                 headers=bearer(panel_token))
            assert [n["author_role"] for n in (await r.json())["notes"]] == ["staff", "head"]

        # The router unreachable (nothing listens there): the page still renders.
        closed = settings.with_(router_internal_url=f"http://127.0.0.1:{free_port()}")
        async with _oversight(closed, panel_token, code) as oversight:
            status, html = await _page(oversight, panel_token, code, "id")
            assert status == 200
            assert 'id="notes-unavailable"' in html
            assert "Catatan internal tidak tersedia saat ini" in html
            assert NOTE not in html
            assert 'id="timeline"' in html and code in html
            status, html = await _page(oversight, panel_token, code, "en")
            assert "The internal notes are unavailable right now" in html


async def test_a_router_that_does_not_answer_costs_the_timeout_only(
        router_settings: Settings) -> None:  # noqa: F811
    """A router that accepts the connection and never answers: the page waits
    AWASI_ROUTER_TIMEOUT_S, then renders without the notes."""
    settings = router_settings
    asked: list[str] = []

    async def hang(request: web.Request) -> web.Response:
        asked.append(request.headers.get("Authorization", ""))
        await asyncio.sleep(30)
        return web.json_response({"notes": []})

    silent = web.Application()
    silent.router.add_get("/api/v1/cases/{cid}/notes", hang)
    async with running_service("router", settings) as router, \
            running_app(silent) as stuck:
        case = await _case_with_notes(settings, router)
        panel_token = case["tok"]["panel.demo"]
        slow = settings.with_(router_internal_url=str(stuck.make_url("")).rstrip("/"),
                              router_timeout_s=1.0)
        async with _oversight(slow, panel_token, case["code"]) as oversight:
            started = time.monotonic()
            status, html = await _page(oversight, panel_token, case["code"], "id")
            took = time.monotonic() - started
        assert status == 200
        assert 'id="notes-unavailable"' in html
        assert 1.0 <= took < 20, took  # the timeout, not the router's 30 s
        # The member's own token went to the router, as a Bearer header.
        assert asked == [f"Bearer {panel_token}"]


@pytest.mark.browser
async def test_notes_on_the_case_page_in_chromium(router_settings: Settings,  # noqa: F811
                                                  page: Page) -> None:
    settings = router_settings
    async with running_service("router", settings) as router:
        case = await _case_with_notes(settings, router)
        code = case["code"]
        linked = settings.with_(router_internal_url=str(router.make_url("")).rstrip("/"))
        async with _oversight(linked, case["tok"]["panel.demo"], code) as oversight:
            base = str(oversight.make_url("")).rstrip("/")
            await page.context.clear_cookies()
            await page.goto(f"{base}/panel/cases/{code}?lang=id")
            await page.fill("#username", "panel.demo")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            notes = page.locator("#notes li.note")
            await expect(notes).to_have_count(2)
            await expect(notes.nth(0)).to_contain_text(NOTE)
            await expect(notes.nth(0)).to_contain_text("petugas perangkat daerah")
            await expect(notes.nth(1)).to_contain_text("kepala perangkat daerah")
            await expect(notes.nth(0)).to_contain_text("WIT")
            await expect(page.get_by_role("heading", name="Catatan internal")).to_be_visible()
            await page.goto(f"{base}/panel/cases/{code}?lang=en")
            await expect(page.get_by_role("heading", name="Internal notes")).to_be_visible()
            await expect(notes.nth(0)).to_contain_text("agency staff")
            await expect(page.locator("#notes-unavailable")).to_have_count(0)
