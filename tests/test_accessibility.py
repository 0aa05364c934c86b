"""Accessibility in real Chromium: axe-core (the engine browsers' own audit tools use)
runs on every public, desk and panel page, at a phone's width (390 px) and a
desktop's (1280 px), and the test fails on any serious or critical violation
(contrast below WCAG AA, controls without names, missing page language, ...).
Public pages must also fit the phone without sideways scrolling, and show times as
people read them (never raw ISO 8601).

The three services run in-process on one database and broker with the demo data
(``awasi.demo.seed``), so every page has something in it. axe-core comes from the
npm registry at install time (``make install`` puts it in ``.cache/axe/``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, BrowserContext

from awasi import demo
from awasi.settings import Settings
from services.router.cli import DEMO_PASSWORD
from tests.support.router import eventually, login
from tests.support.services import running_service

AXE = Path(__file__).resolve().parent.parent / ".cache" / "axe" / "axe.min.js"
WIDTHS = (390, 1280)
ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]


def base(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


@contextlib.asynccontextmanager
async def stack(settings: Settings) -> AsyncIterator[dict[str, TestClient]]:
    async with (running_service("intake", settings) as intake,
                running_service("router", settings) as router,
                running_service("oversight", settings) as oversight):
        yield {"intake": intake, "router": router, "oversight": oversight}


async def audit(ctx: BrowserContext, url: str, *, phone: bool, public: bool) -> list[str]:
    """The page's serious and critical axe violations (and sideways scrolling on a
    phone for a public page), as readable lines."""
    page = await ctx.new_page()
    try:
        response = await page.goto(url)
        assert response is not None and response.status < 400, (url, response and response.status)
        await page.add_script_tag(content=AXE.read_text())
        violations: list[dict[str, Any]] = await page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))")
        out = [f"{url} @{'390' if phone else '1280'}: {v['id']} ({v['impact']}): {v['help']}"
               f" at {v['nodes']}" for v in violations
               if v["impact"] in ("serious", "critical")]
        if public:
            # Times as people read them (awasi.timefmt), never raw ISO 8601.
            text = await page.evaluate("() => document.body.innerText")
            if raw := ISO.findall(text):
                out.append(f"{url}: raw ISO times {raw[:3]}")
        if phone and public:
            overflow = await page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                wide = await page.evaluate(
                    "() => [...document.body.querySelectorAll('*')]"
                    ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1"
                    " && !e.parentElement.closest('.table-scroll'))"
                    ".slice(0, 4).map(e => e.tagName + (e.id ? '#' + e.id : ''))")
                out.append(f"{url} @390: {overflow}px of sideways scrolling (from {wide})")
        return out
    finally:
        await page.close()


async def log_in(ctx: BrowserContext, url: str, username: str) -> None:
    page = await ctx.new_page()
    try:
        await page.goto(url)
        await page.fill("#username", username)
        await page.fill("#password", DEMO_PASSWORD)
        async with page.expect_navigation():
            await page.click("main form button[type=submit]")
    finally:
        await page.close()


async def test_every_page_passes_axe_at_phone_and_desktop_width(
        settings: Settings, browser: Browser) -> None:
    assert AXE.exists(), "axe-core is missing: run `make install`"
    await demo.seed(settings)
    async with stack(settings) as s:
        intake, router, oversight = s["intake"], s["router"], s["oversight"]
        token = await login(router, "mdn.inspektorat", DEMO_PASSWORD)

        async def a_ticket() -> dict[str, Any] | None:
            r = await router.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
            items = (await r.json())["tickets"]
            return items[0] if items else None

        ticket = await eventually(a_ticket, what="a demo ticket at the desk")
        code = ticket["tracking_code"]
        panel_token = await login(oversight, "panel.demo", DEMO_PASSWORD)

        async def a_case() -> bool:
            r = await oversight.get(f"/api/v1/cases/{code}/timeline",
                                    headers={"Authorization": f"Bearer {panel_token}"})
            return r.status == 200

        await eventually(a_case, what="the case at oversight")
        r = await intake.get("/api/v1/reports")
        public_code = (await r.json())["reports"][0]["tracking_code"]
        r = await intake.get("/api/v1/survey-units?region=MDN")
        unit = (await r.json())[0]["code"]
        public = [f"{base(intake)}/", f"{base(intake)}/status",
                  f"{base(intake)}/status/{code}", f"{base(intake)}/reports",
                  f"{base(intake)}/reports/{public_code}", f"{base(intake)}/survey",
                  f"{base(intake)}/survey/{unit}",
                  f"{base(intake)}/?lang=en", f"{base(oversight)}/",
                  f"{base(oversight)}/?lang=en", f"{base(oversight)}/reports/MDN/2026",
                  f"{base(oversight)}/reports/MDN/2026/findings",
                  f"{base(router)}/login", f"{base(oversight)}/panel/login"]
        desk = {"mdn.inspektorat": [f"{base(router)}/", f"{base(router)}/tickets/{ticket['id']}",
                                    f"{base(router)}/transferred",
                                    f"{base(router)}/account/password"],
                "mdn.inspektorat.head": [f"{base(router)}/escalations",
                                         f"{base(router)}/notifications",
                                         f"{base(router)}/recommendations"],
                "triage.swl": [f"{base(router)}/triage"],
                "admin.demo": [f"{base(router)}/admin/accounts",
                               f"{base(router)}/admin/accounts/mdn.inspektorat"]}
        panel = [f"{base(oversight)}/panel", f"{base(oversight)}/panel/cases/{code}",
                 f"{base(oversight)}/panel/evaluation", f"{base(oversight)}/panel/password"]

        problems: list[str] = []
        for width in WIDTHS:
            phone = width == 390
            ctx = await browser.new_context(bypass_csp=True,
                                            viewport={"width": width, "height": 844})
            try:
                for url in public:
                    problems += await audit(ctx, url, phone=phone, public=True)
                for user, urls in desk.items():
                    await ctx.clear_cookies()
                    await log_in(ctx, f"{base(router)}/login", user)
                    for url in urls:
                        problems += await audit(ctx, url, phone=phone, public=False)
                await ctx.clear_cookies()
                await log_in(ctx, f"{base(oversight)}/panel/login", "panel.demo")
                for url in panel:
                    problems += await audit(ctx, url, phone=phone, public=False)
            finally:
                await ctx.close()
        assert problems == [], "\n".join(problems)
