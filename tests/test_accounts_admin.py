"""The router's admin pages for staff accounts: only admins, CSRF on every form,
keyset pages, a generated password shown once, disable ending sessions at once,
role changes, everything in the account audit log; and the same in real Chromium."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from awasi.db import create_pool
from awasi.identity import add_user
from awasi.settings import Settings
from tests.support.services import running_service

pytestmark = [
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]

STRONG = "kunang-kunang-senja-77"


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF field"
    return m.group(1)


async def seed(settings: Settings, *extra: tuple[str, str, str | None]) -> None:
    pool = await create_pool(settings.require_database(), min_size=1, max_size=1)
    try:
        await add_user(pool, username="admin", password=STRONG, role="admin",
                       display_name="Admin Kota")
        for username, role, agency in extra:
            await add_user(pool, username=username, password=STRONG, role=role, agency=agency)
    finally:
        await pool.close()


async def cookie_login(client: TestClient, username: str) -> None:
    r = await client.post("/api/v1/auth/login", json={"username": username, "password": STRONG})
    assert r.status == 200, await r.text()


async def audit(settings: Settings) -> list[tuple[str, str, str]]:
    pool = await create_pool(settings.require_database(), min_size=1, max_size=1)
    try:
        rows = await pool.fetch("SELECT actor, action, target FROM identity.account_audit"
                                " ORDER BY id")
    finally:
        await pool.close()
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_only_admins_and_only_with_the_csrf_token(settings: Settings) -> None:
    await seed(settings, ("sari", "staff", "MDN-PUPR"))
    async with running_service("router", settings) as router:
        await cookie_login(router, "sari")
        r = await router.get("/admin/accounts")
        assert r.status == 403
        r = await router.post("/admin/accounts/admin/disable", data={})
        assert r.status == 403
        router.session.cookie_jar.clear()

        await cookie_login(router, "admin")
        r = await router.get("/", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/admin/accounts"
        page = await (await router.get("/admin/accounts?lang=en")).text()
        assert "sari" in page and "argon2" not in page
        # Without the CSRF token: refused, nothing written.
        r = await router.post("/admin/accounts/sari/disable", data={})
        assert r.status == 403
        r = await router.post("/admin/accounts", data={"username": "baru", "role": "panel"})
        assert r.status == 403
        assert await audit(settings) == []
        # With it: the staff member is disabled.
        r = await router.post("/admin/accounts/sari/disable", data={"csrf_token": csrf(page)})
        assert r.status == 200
        assert "Disabled" in await r.text()
        # An admin cannot disable themselves by a slip.
        r = await router.post("/admin/accounts/admin/disable", data={"csrf_token": csrf(page)})
        assert r.status == 403
        assert "own account" in await r.text()
    assert await audit(settings) == [("admin", "disable", "sari")]


async def test_keyset_pages_add_update_and_reset(settings: Settings) -> None:
    await seed(settings, *((f"staf{i:02d}", "staff", "MDN-PUPR") for i in range(55)))
    async with running_service("router", settings) as router:
        await cookie_login(router, "admin")
        first = await (await router.get("/admin/accounts?lang=en")).text()
        names = re.findall(r'data-username="([^"]+)"', first)
        assert len(names) == 50 and names == sorted(names) and names[0] == "admin"
        m = re.search(r'rel="next" href="([^"]+)"', first)
        assert m
        second = await (await router.get(m.group(1).replace("&amp;", "&"))).text()
        rest = re.findall(r'data-username="([^"]+)"', second)
        assert len(rest) == 6 and not set(rest) & set(names)
        assert 'rel="next"' not in second
        token = csrf(first)

        # A staff member needs an agency from the catalog.
        r = await router.post("/admin/accounts?lang=en", data={
            "csrf_token": token, "username": "wati", "role": "staff", "agency": "NOPE"})
        assert r.status == 422 and "need an agency" in await r.text()
        r = await router.post("/admin/accounts?lang=en", data={
            "csrf_token": token, "username": "Bad Name!", "role": "panel"})
        assert r.status == 422 and "Usernames are" in await r.text()
        r = await router.post("/admin/accounts?lang=en", data={
            "csrf_token": token, "username": "wati", "name": "Wati", "role": "staff",
            "agency": "MDN-PUPR"})
        assert r.status == 200
        shown = re.search(r'<code class="password">([^<]+)</code>', await r.text())
        assert shown
        password = shown.group(1)
        r = await router.post("/admin/accounts?lang=en", data={
            "csrf_token": token, "username": "wati", "role": "panel"})
        assert r.status == 409
        # The generated password works, shown once only.
        r = await router.post("/api/v1/auth/login",
                              json={"username": "wati", "password": password})
        assert r.status == 200
        wati = {"Authorization": f"Bearer {(await r.json())['token']}"}
        router.session.cookie_jar.clear()
        await cookie_login(router, "admin")
        detail = await (await router.get("/admin/accounts/wati?lang=en")).text()
        assert password not in detail
        token = csrf(detail)

        # A role change ends the account's sessions.
        r = await router.post("/admin/accounts/wati/update?lang=en", data={
            "csrf_token": token, "role": "head", "agency": "MDN-DINKES", "region": ""})
        assert r.status == 200
        assert "Agency head" in await r.text() and "MDN-DINKES" in await r.text()
        assert (await router.get("/api/v1/auth/me", headers=wati)).status == 401
        r = await router.post("/admin/accounts/wati/reset-password?lang=en",
                              data={"csrf_token": token})
        new = re.search(r'<code class="password">([^<]+)</code>', await r.text())
        assert new and new.group(1) != password
        r = await router.post("/api/v1/auth/login",
                              json={"username": "wati", "password": password})
        assert r.status == 401
        r = await router.post("/api/v1/auth/login",
                              json={"username": "wati", "password": new.group(1)})
        assert r.status == 200
    assert await audit(settings) == [("admin", "add", "wati"),
                                     ("admin", "account_changed", "wati"),
                                     ("admin", "password_reset", "wati")]


async def test_own_password_page(settings: Settings) -> None:
    await seed(settings, ("sari", "staff", "MDN-PUPR"))
    async with running_service("router", settings) as router:
        await cookie_login(router, "sari")
        page = await (await router.get("/account/password?lang=en")).text()
        token = csrf(page)
        r = await router.post("/account/password?lang=en", data={
            "csrf_token": token, "current_password": STRONG,
            "new_password": "password1234", "new_password_again": "password1234"})
        assert r.status == 422 and "too easy to guess" in await r.text()
        r = await router.post("/account/password?lang=id", data={
            "csrf_token": token, "current_password": "salah-salah",
            "new_password": "perahu-kertas-di-sungai", "new_password_again":
            "perahu-kertas-di-sungai"})
        assert r.status == 403 and "Kata sandi saat ini salah" in await r.text()
        r = await router.post("/account/password?lang=en", data={
            "csrf_token": token, "current_password": STRONG,
            "new_password": "perahu-kertas-di-sungai", "new_password_again":
            "perahu-kertas-di-sungai"})
        assert r.status == 200 and "has been changed" in await r.text()
        # The session in use stays.
        assert (await router.get("/account/password")).status == 200
    assert await audit(settings) == [("sari", "password_changed", "sari")]


def test_every_admin_message_has_indonesian_and_english() -> None:
    from pathlib import Path

    from awasi.i18n import Catalogs

    root = Path(__file__).resolve().parent.parent / "services" / "router"
    pattern = re.compile(r"""(?:\b_|gettext|_text\(request,)\(?\s*"((?:[^"\\]|\\.)*)"\s*\)?""")
    found: set[str] = set()
    for path in [root / "templates" / "_admin.html", root / "templates" / "admin_accounts.html",
                 root / "templates" / "admin_account.html",
                 root / "templates" / "account_password.html", root / "admin.py"]:
        found.update(m.group(1) for m in pattern.finditer(path.read_text()))
    assert len(found) > 40
    catalogs = Catalogs(root / "locale")
    assert catalogs.missing("id", iter(sorted(found))) == []
    assert catalogs.missing("en", iter(sorted(found))) == []


@pytest.mark.browser
async def test_admin_manages_an_account_in_the_browser(settings: Settings, page: Page) -> None:
    await seed(settings)
    async with running_service("router", settings) as router:
        base = str(router.make_url("")).rstrip("/")
        await page.goto(f"{base}/?lang=en")
        await page.fill("#username", "admin")
        await page.fill("#password", STRONG)
        await page.click("button[type=submit]")
        await expect(page.locator("h1")).to_have_text("Accounts")

        await page.fill("#username", "tono")
        await page.fill("#name", "Tono")
        await page.select_option("#role", "staff")
        await page.select_option("#agency", "MDN-PUPR")
        await page.get_by_role("button", name="Add the account").click()
        await expect(page.locator(".notice").first).to_contain_text("Account tono added")
        password = await page.locator("code.password").inner_text()
        assert len(password) >= 16
        r = await router.post("/api/v1/auth/login",
                              json={"username": "tono", "password": password})
        assert r.status == 200
        tono = {"Authorization": f"Bearer {(await r.json())['token']}"}

        await page.click("a[href='/admin/accounts/tono']")
        await expect(page.locator(".account-status")).to_have_text("Active")
        await page.get_by_role("button", name="Disable the account").click()
        await expect(page.locator(".account-status")).to_have_text("Disabled")
        assert (await router.get("/api/v1/auth/me", headers=tono)).status == 401
        await page.get_by_role("button", name="Enable the account").click()
        await expect(page.locator(".account-status")).to_have_text("Active")

        await page.select_option("#role", "head")
        await page.get_by_role("button", name="Save role and agency").click()
        await expect(page.locator(".account-role")).to_have_text("Agency head")
        await page.goto(f"{base}/admin/accounts/tono?lang=id")
        await expect(page.locator(".account-role")).to_have_text("Kepala OPD")
    assert [a for _, a, _ in await audit(settings)] == ["add", "disable", "enable",
                                                        "account_changed"]
