"""The web side, hardened (docs/SECURITY.md, "The web side"): forwarding headers
believed only from trusted proxies, Secure cookies and HSTS behind an https proxy,
rate limits per device and per address, the login throttle under a concurrent
burst and per (account, client) pair, open redirects refused on both login pages,
and the security headers on every response of every service.

Every test drives the real services on real sockets against the real embedded
PostgreSQL (and broker, where the service needs one)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiohttp_jinja2
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from awasi.db import create_pool
from awasi.identity import SESSION_COOKIE, add_user
from awasi.settings import Settings, SettingsError
from awasi.web.app import create_base_app
from awasi.web.redirects import safe_next
from tests.support.services import running_app, running_service

PASSWORD = "rahasia-sekali-123"

# Strings that browsers (or a sloppy check) read as "another site".
BYPASSES = [
    "//evil.com",
    "///evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "/%2F%2Fevil.com",
    "/%2f%2fevil.com",
    "/%252F%252Fevil.com",
    "/%5cevil.com",
    "/%5Cevil.com",
    "/%09/evil.com",
    "https:evil.com",
    "https://evil.com",
    "http:/evil.com",
    "\t//evil.com",
    "/\t/evil.com",
    " //evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.com",
    "//evil.com/%2e%2e",
    "/\u3002evil.com",
    "/\uff0f/evil.com",
    "",
]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(database_url, min_size=1, max_size=3)
    try:
        yield p
    finally:
        await p.close()


def cookies_of(r: aiohttp.ClientResponse) -> dict[str, str]:
    """Set-Cookie headers by cookie name (the whole header, attributes included)."""
    return {h.split("=", 1)[0]: h for h in r.headers.getall("Set-Cookie", [])}


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, html
    return match.group(1)


# --- settings -------------------------------------------------------------------------

def test_trusted_proxies_setting_parses_and_names_a_bad_entry() -> None:
    s = Settings.from_env({"AWASI_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16,fd00::/8"})
    assert [str(n) for n in s.trusted_proxy_networks()] == [
        "10.0.0.5/32", "10.1.0.0/16", "fd00::/8"]
    assert Settings.from_env({}).trusted_proxy_networks() == ()
    with pytest.raises(SettingsError, match="AWASI_TRUSTED_PROXIES.*proxy.example"):
        Settings.from_env({"AWASI_TRUSTED_PROXIES": "10.0.0.5,proxy.example"})
    with pytest.raises(SettingsError, match="AWASI_PROXY_HEADER"):
        Settings.from_env({"AWASI_PROXY_HEADER": "x-real-ip"})


# --- the kit: whom forwarding headers are believed from ---------------------------------

def _echo_app(settings: Settings) -> web.Application:
    app = create_base_app(settings, "echo", title="echo")

    async def echo(request: web.Request) -> web.Response:
        response = web.json_response({"remote": request.remote, "scheme": request.scheme,
                                      "host": request.host})
        response.set_cookie("probe", "1", httponly=True)
        return response

    app.router.add_get("/echo", echo)
    return app


FORGED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
          "X-Forwarded-Host": "evil.example", "Forwarded": "for=198.51.100.1;proto=https"}


async def test_forwarding_headers_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    # Nobody trusted (the default): the forged headers change nothing.
    async with running_app(_echo_app(Settings())) as client:
        r = await client.get("/echo", headers=FORGED)
        assert await r.json() == {"remote": "127.0.0.1", "scheme": "http",
                                  "host": r.url.host + f":{r.url.port}"}
        assert "Strict-Transport-Security" not in r.headers
        assert "secure" not in cookies_of(r)["probe"].lower()
    # Another proxy trusted, not us: still ignored.
    async with running_app(_echo_app(Settings(trusted_proxies="10.0.0.0/8"))) as client:
        body = await (await client.get("/echo", headers=FORGED)).json()
        assert (body["remote"], body["scheme"]) == ("127.0.0.1", "http")
    # 127.0.0.1 trusted: its X-Forwarded-* are believed (and Forwarded is not).
    async with running_app(_echo_app(Settings(trusted_proxies="127.0.0.1"))) as client:
        r = await client.get("/echo", headers=FORGED)
        assert await r.json() == {"remote": "203.0.113.7", "scheme": "https",
                                  "host": "evil.example"}
        assert r.headers["Strict-Transport-Security"].startswith("max-age=")
        assert "; secure" in cookies_of(r)["probe"].lower()
        # A chain: what the client itself wrote at the left is not believed; the
        # rightmost address that is not a trusted proxy is the client.
        body = await (await client.get("/echo", headers={
            "X-Forwarded-For": "6.6.6.6, 203.0.113.8, 127.0.0.1"})).json()
        assert body["remote"] == "203.0.113.8"
        # Without headers the peer is the client, over http.
        body = await (await client.get("/echo")).json()
        assert (body["remote"], body["scheme"]) == ("127.0.0.1", "http")
        # A malformed header from the proxy: the JSON error, not a crash.
        r = await client.get("/echo", headers={"X-Forwarded-For": "not-an-address"})
        assert r.status == 400 and "error" in await r.json()
    # RFC 7239 when so configured (and then X-Forwarded-For is ignored).
    settings = Settings(trusted_proxies="127.0.0.0/8", proxy_header="forwarded")
    async with running_app(_echo_app(settings)) as client:
        body = await (await client.get("/echo", headers=FORGED)).json()
        assert (body["remote"], body["scheme"]) == ("198.51.100.1", "https")


# --- login: the throttle follows the real client ----------------------------------------

async def _staff(settings: Settings, *names: str, role: str = "staff") -> None:
    pool = await create_pool(settings.database_url or "", min_size=1, max_size=1)
    try:
        for name in names:
            await add_user(pool, username=name, password=PASSWORD, role=role,
                           agency="MDN-PUPR" if role in ("staff", "head") else None)
    finally:
        await pool.close()


async def _api_login(client: TestClient, username: str, password: str,
                     address: str | None = None, proto: str | None = None,
                     ) -> aiohttp.ClientResponse:
    headers = {}
    if address:
        headers["X-Forwarded-For"] = address
    if proto:
        headers["X-Forwarded-Proto"] = proto
    r = await client.post("/api/v1/auth/login", json={"username": username,
                                                      "password": password},
                          headers=headers)
    await r.read()
    return r


async def test_a_burst_of_wrong_logins_checks_at_most_the_limit(settings: Settings) -> None:
    settings = settings.with_(login_rate_limit_per_minute=10)
    await _staff(settings, "korban")
    async with running_service("router", settings) as client:
        results = await asyncio.gather(*(
            _api_login(client, "korban", f"tebakan-{i}") for i in range(30)))
        statuses = sorted(r.status for r in results)
        # Exactly the limit got a password check (401); the rest were refused unchecked.
        assert statuses.count(401) == 10, statuses
        assert statuses.count(429) == 20, statuses
        refused = next(r for r in results if r.status == 429)
        assert int(refused.headers["Retry-After"]) >= 1
        # Even the right password is not checked from this client now.
        assert (await _api_login(client, "korban", PASSWORD)).status == 429


async def test_argon2_runs_on_its_own_small_pool(settings: Settings) -> None:
    settings = settings.with_(password_hash_workers=2)
    await _staff(settings, "pemilik")
    async with running_service("router", settings) as client:
        before = {t.ident for t in threading.enumerate() if t.name.startswith("argon2")}
        # Distinct usernames: no throttle in the way, every attempt is an Argon2 check.
        results = await asyncio.gather(*(
            _api_login(client, f"orang-{i}", "salah") for i in range(12)),
            _api_login(client, "pemilik", PASSWORD))
        assert [r.status for r in results] == [401] * 12 + [200]
        argon2 = {t.ident for t in threading.enumerate() if t.name.startswith("argon2")}
        assert 1 <= len(argon2 - before) <= 2


async def test_throttle_per_pair_with_a_trusted_proxy(settings: Settings) -> None:
    settings = settings.with_(login_rate_limit_per_minute=3, trusted_proxies="127.0.0.1")
    await _staff(settings, "kepala.dinas")
    async with running_service("router", settings) as client:
        stranger = "198.51.100.66"
        for _ in range(3):
            assert (await _api_login(client, "kepala.dinas", "salah", stranger)).status == 401
        for _ in range(20):  # hammering on: refused, and it costs the account nothing
            assert (await _api_login(client, "kepala.dinas", "salah", stranger)).status == 429
        # The owner, from their own address, is not locked out.
        r = await _api_login(client, "kepala.dinas", PASSWORD, "203.0.113.20")
        assert r.status == 200
        # Behind the trusted proxy the stranger's real address is what counts: the
        # stranger is still throttled with the right password.
        assert (await _api_login(client, "kepala.dinas", PASSWORD, stranger)).status == 429


async def test_forged_forwarding_headers_do_not_escape_the_throttle(settings: Settings) -> None:
    # No proxy trusted: a guesser inventing X-Forwarded-For stays one client.
    settings = settings.with_(login_rate_limit_per_minute=3)
    await _staff(settings, "bendahara")
    async with running_service("router", settings) as client:
        for i in range(3):
            r = await _api_login(client, "bendahara", "salah", f"203.0.113.{i}")
            assert r.status == 401
        for i in range(3, 6):
            r = await _api_login(client, "bendahara", PASSWORD, f"203.0.113.{i}")
            assert r.status == 429


async def test_session_cookie_secure_and_hsts_behind_a_trusted_https_proxy(
        settings: Settings) -> None:
    await _staff(settings, "petugas.a")
    async with running_service("router", settings.with_(trusted_proxies="127.0.0.1")) as c:
        r = await _api_login(c, "petugas.a", PASSWORD, "203.0.113.30", proto="https")
        assert r.status == 200
        assert "; secure" in cookies_of(r)[SESSION_COOKIE].lower()
        assert r.headers["Strict-Transport-Security"].startswith("max-age=")
        # The desk's login form: its CSRF cookie too, and the language cookie set as
        # a raw header.
        r = await c.get("/login?lang=en", headers={"X-Forwarded-For": "203.0.113.30",
                                                   "X-Forwarded-Proto": "https"})
        assert all("; secure" in h.lower() for h in cookies_of(r).values()), cookies_of(r)
        assert len(cookies_of(r)) == 2
        # Plain http through the proxy: no Secure, no HSTS.
        r = await _api_login(c, "petugas.a", PASSWORD, "203.0.113.30", proto="http")
        assert "secure" not in cookies_of(r)[SESSION_COOKIE].lower()
        assert "Strict-Transport-Security" not in r.headers
    # The same headers from an untrusted peer: no Secure, no HSTS.
    async with running_service("router", settings) as c:
        r = await _api_login(c, "petugas.a", PASSWORD, "203.0.113.30", proto="https")
        assert r.status == 200
        assert "secure" not in cookies_of(r)[SESSION_COOKIE].lower()
        assert "Strict-Transport-Security" not in r.headers


# --- intake: rate limits per device and per address ------------------------------------

def complaint(n: int) -> dict[str, Any]:
    return {"region": "MDN", "category": "asn-pungli",
            "description": f"Petugas meminta uang untuk surat pengantar, laporan {n}.",
            "privacy": "anonymous"}


class Device:
    """A client with its own cookie jar (one phone), all on 127.0.0.1."""

    def __init__(self, base: str, jar: aiohttp.abc.AbstractCookieJar | None = None) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(
            cookie_jar=jar if jar is not None else aiohttp.CookieJar(unsafe=True))
        self.sent = 0

    async def submit(self) -> tuple[int, dict[str, Any]]:
        self.sent += 1
        async with self.session.post(f"{self.base}/api/v1/complaints",
                                     json=complaint(self.sent)) as r:
            return r.status, await r.json()

    async def close(self) -> None:
        await self.session.close()


async def test_rate_limit_per_device_behind_one_address(settings: Settings) -> None:
    settings = settings.with_(rate_limit_per_minute=2, rate_limit_per_address_per_minute=5)
    async with running_service("intake", settings) as client:
        base = str(client.make_url("")).rstrip("/")
        a, b, c = Device(base), Device(base), Device(base)
        try:
            # Each phone picks up its device cookie on its first page view.
            for d in (a, b, c):
                async with d.session.get(f"{base}/") as r:
                    assert r.status == 200
                    device = cookies_of(r)["awasi_device"]
                    assert "httponly" in device.lower() and "samesite=lax" in device.lower()
            # Two devices behind one address both get through...
            assert [(await a.submit())[0] for _ in range(2)] == [201, 201]
            assert [(await b.submit())[0] for _ in range(2)] == [201, 201]
            # ... and one over its own limit gets the JSON error.
            status, body = await a.submit()
            assert status == 429
            assert body["error"]["code"] == "rate_limited"
            assert body["error"]["details"]["retry_after_s"] >= 1
            # The address ceiling (5) holds however many device cookies it collects.
            assert (await c.submit())[0] == 201
            status, body = await c.submit()
            assert status == 429 and body["error"]["code"] == "rate_limited"
        finally:
            for d in (a, b, c):
                await d.close()


async def test_dropping_or_forging_the_device_cookie_gains_nothing(settings: Settings) -> None:
    settings = settings.with_(rate_limit_per_minute=2, rate_limit_per_address_per_minute=50)
    async with running_service("intake", settings) as client:
        base = str(client.make_url("")).rstrip("/")
        # No cookie jar: every request is cookie-less, all share the address's bucket.
        bare = Device(base, aiohttp.DummyCookieJar())
        forged = Device(base)
        try:
            assert [(await bare.submit())[0] for _ in range(3)] == [201, 201, 429]
            # A made-up (unsigned) device cookie is no device: same shared bucket.
            forged.session.cookie_jar.update_cookies(
                {"awasi_device": "my-own-id"}, client.make_url("/"))
            status, body = await forged.submit()
            assert status == 429 and body["error"]["code"] == "rate_limited"
        finally:
            await bare.close()
            await forged.close()


async def test_submission_limit_follows_the_real_client(settings: Settings) -> None:
    async def send(c: Device, address: str) -> int:
        c.sent += 1
        async with c.session.post(f"{c.base}/api/v1/complaints", json=complaint(c.sent),
                                  headers={"X-Forwarded-For": address}) as r:
            await r.read()
            return r.status

    for trusted, expected in (("127.0.0.1", [201, 429, 201]), ("", [201, 429, 429])):
        limited = settings.with_(rate_limit_per_minute=1, trusted_proxies=trusted)
        async with running_service("intake", limited) as client:
            bare = Device(str(client.make_url("")).rstrip("/"), aiohttp.DummyCookieJar())
            try:
                got = [await send(bare, "203.0.113.1"), await send(bare, "203.0.113.1"),
                       await send(bare, "203.0.113.2")]
            finally:
                await bare.close()
            # Behind the trusted proxy two citizens are two clients; from an untrusted
            # peer the invented address is ignored.
            assert got == expected, (trusted, got)


# --- open redirects, through the real login pages ---------------------------------------

def test_safe_next_refuses_every_known_bypass() -> None:
    for bad in BYPASSES:
        assert safe_next(bad) == "/", repr(bad)
        assert safe_next(bad, default="/panel", prefix="/panel") == "/panel", repr(bad)
    for good in ("/", "/tickets/abc-123", "/?status=assigned&sort=-created", "/triage",
                 "/tickets/a%20b"):
        assert safe_next(good) == good
    assert safe_next("/panel/cases/AWS-1?x=1", default="/panel", prefix="/panel") == \
        "/panel/cases/AWS-1?x=1"
    for outside in ("/", "/panelx", "/login", "/%70anel/../evil", "/panel/%2e%2e/x"):
        assert safe_next(outside, default="/panel", prefix="/panel") == "/panel", outside
    assert safe_next(None) == "/" and safe_next(["/x"]) == "/"


async def _form_login(client: TestClient, path: str, next_value: str) -> tuple[int, str, str]:
    """GET the login page with ``?next=``, then POST it with the right password and
    ``next``. Returns (the page's hidden next, the POST's status, its Location)."""
    client.session.cookie_jar.clear()
    r = await client.get(path, params={"next": next_value})
    html = await r.text()
    shown = hidden(html, "next")
    r = await client.post(path, data={"csrf_token": hidden(html, "csrf_token"),
                                      "username": "penjaga", "password": PASSWORD,
                                      "next": next_value}, allow_redirects=False)
    return r.status, shown, r.headers.get("Location", "")


async def test_login_pages_refuse_open_redirects(settings: Settings) -> None:
    await _staff(settings, "penjaga", role="panel")
    async with running_service("oversight", settings) as panel:
        for bad in BYPASSES:
            status, shown, location = await _form_login(panel, "/panel/login", bad)
            assert (status, location) == (303, "/panel"), (bad, status, location)
            assert shown == "/panel", bad
        status, _, location = await _form_login(panel, "/panel/login", "/panel/cases/AWS-1")
        assert (status, location) == (303, "/panel/cases/AWS-1")
    await _staff(settings, "penjaga.desk")
    async with running_service("router", settings) as desk:
        for bad in BYPASSES:
            client_status, shown, location = await _desk_login(desk, bad)
            assert (client_status, location) == (303, "/"), (bad, client_status, location)
            assert shown == "/", bad
        status, _, location = await _desk_login(desk, "/?status=assigned")
        assert (status, location) == (303, "/?status=assigned")


async def _desk_login(client: TestClient, next_value: str) -> tuple[int, str, str]:
    client.session.cookie_jar.clear()
    r = await client.get("/login", params={"next": next_value})
    html = await r.text()
    shown = hidden(html, "next")
    r = await client.post("/login", data={"csrf_token": hidden(html, "csrf_token"),
                                          "username": "penjaga.desk", "password": PASSWORD,
                                          "next": next_value}, allow_redirects=False)
    return r.status, shown, r.headers.get("Location", "")


async def test_panel_login_refuses_a_post_without_its_csrf_token(settings: Settings) -> None:
    await _staff(settings, "anggota", role="panel")
    async with running_service("oversight", settings) as client:
        r = await client.post("/panel/login", data={"username": "anggota",
                                                   "password": PASSWORD},
                              allow_redirects=False)
        assert r.status == 403
        assert SESSION_COOKIE not in cookies_of(r)
        # A token from the page but no cookie (another site's form): refused too.
        html = await (await client.get("/panel/login")).text()
        token = hidden(html, "csrf_token")
        client.session.cookie_jar.clear()
        r = await client.post("/panel/login", data={"username": "anggota",
                                                   "password": PASSWORD,
                                                   "csrf_token": token},
                              allow_redirects=False)
        assert r.status == 403 and SESSION_COOKIE not in cookies_of(r)
        # With both: in.
        html = await (await client.get("/panel/login")).text()
        r = await client.post("/panel/login", data={"username": "anggota",
                                                   "password": PASSWORD,
                                                   "csrf_token": hidden(html, "csrf_token")},
                              allow_redirects=False)
        assert r.status == 303 and SESSION_COOKIE in cookies_of(r)


# --- headers on every response of every service -----------------------------------------

PATHS = {
    "intake": ["/", "/status", "/api/v1/regions", "/api/v1/complaints/AWS-NOPE",
               "/no-such-page", "/healthz", "/openapi.json", "/static/style.css"],
    "router": ["/login", "/", "/api/v1/tickets", "/no-such-page", "/healthz",
               "/assets/queue-live.js"],
    "oversight": ["/", "/panel/login", "/panel", "/api/v1/stats/agencies", "/no-such-page",
                  "/metrics"],
}


@pytest.mark.parametrize("service", sorted(PATHS))
async def test_security_headers_on_every_response(settings: Settings, service: str) -> None:
    async with running_service(service, settings) as client:
        env = aiohttp_jinja2.get_env(client.app)
        assert env.autoescape is True or callable(env.autoescape)
        for path in PATHS[service]:
            r = await client.get(path, allow_redirects=False)
            await r.read()
            csp = r.headers.get("Content-Security-Policy", "")
            assert "frame-ancestors 'none'" in csp, (path, r.status, dict(r.headers))
            script_src = re.search(r"script-src ([^;]*)", csp)
            assert script_src and "unsafe-inline" not in script_src.group(1), (path, csp)
            assert r.headers["X-Content-Type-Options"] == "nosniff", path
            assert r.headers["X-Frame-Options"] == "DENY", path
            assert "Strict-Transport-Security" not in r.headers  # plain http here


def test_templates_carry_no_inline_script() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "services"
    templates = list(root.glob("*/templates/**/*.html"))
    assert templates
    for path in templates:
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text, flags=re.I):
            assert "src=" in tag, f"{path}: inline script {tag}"
        handler = re.search(r"\son[a-z]+\s*=", text, flags=re.I)
        assert handler is None, f"{path}: inline event handler {handler.group(0)}"
        assert "javascript:" not in text.lower(), path


async def test_an_endless_username_is_refused_like_any_wrong_one(pool: asyncpg.Pool) -> None:
    from awasi.identity import InvalidCredentials, login

    # The desk's form takes any length: the throttle's keys stay bounded, no 500.
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await login(pool, "x" * 100_000, "salah", "203.0.113.9" + "0" * 5000)
