"""Staff identity: Argon2 passwords, opaque hashed tokens, throttled logins, the
login endpoint with its session cookie, CSRF tokens, and `awasi users add`."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web

from awasi.db import create_pool
from awasi.identity import (
    SESSION_COOKIE,
    InvalidCredentials,
    LoginThrottled,
    UserExists,
    add_auth_routes,
    add_user,
    authenticate,
    csrf_token,
    login,
    logout,
    require_user,
    verify_csrf,
)
from awasi.identity.errors import InvalidUser
from awasi.identity.store import LoginLimits
from awasi.settings import Settings
from awasi.web import keys
from awasi.web.app import create_base_app
from tests.support.services import running_app
from tests.support.stack import process_env


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(database_url, min_size=1, max_size=3)
    try:
        yield p
    finally:
        await p.close()


async def test_password_is_stored_as_argon2_and_token_as_sha256(pool: asyncpg.Pool) -> None:
    user = await add_user(pool, username="ani", password="rahasia-sekali", role="staff",
                          agency="MDN-PUPR", display_name="Ani")
    stored = await pool.fetchval("SELECT password_hash FROM identity.users WHERE id = $1",
                                 user.id)
    assert stored.startswith("$argon2id$") and "rahasia-sekali" not in stored
    same, token = await login(pool, "ani", "rahasia-sekali", "10.0.0.1")
    assert same.id == user.id and same.agency == "MDN-PUPR"
    hashes = await pool.fetch("SELECT token_hash FROM identity.tokens")
    assert [bytes(r["token_hash"]) for r in hashes] == [hashlib.sha256(token.encode()).digest()]
    assert (await authenticate(pool, token)) == same
    assert await authenticate(pool, token + "x") is None
    await logout(pool, token)
    assert await authenticate(pool, token) is None


async def test_expired_token_and_inactive_user_do_not_authenticate(pool: asyncpg.Pool) -> None:
    await add_user(pool, username="budi", password="password-budi", role="panel")
    _, token = await login(pool, "budi", "password-budi", "10.0.0.2")
    await pool.execute("UPDATE identity.tokens SET expires_at = now() - interval '1 s'")
    assert await authenticate(pool, token) is None
    _, token = await login(pool, "budi", "password-budi", "10.0.0.2")
    await pool.execute("UPDATE identity.users SET active = false")
    assert await authenticate(pool, token) is None
    with pytest.raises(InvalidCredentials):
        await login(pool, "budi", "password-budi", "10.0.0.2")


async def test_add_user_validates_and_refuses_duplicates(pool: asyncpg.Pool) -> None:
    with pytest.raises(InvalidUser):
        await add_user(pool, username="x1", password="long-enough", role="staff")  # no agency
    with pytest.raises(InvalidUser):
        await add_user(pool, username="x2", password="long-enough", role="boss")
    with pytest.raises(InvalidUser):
        await add_user(pool, username="x3", password="short", role="panel")
    await add_user(pool, username="cici", password="long-enough", role="admin")
    with pytest.raises(UserExists):
        await add_user(pool, username="cici", password="other-password", role="admin")
    again = await add_user(pool, username="cici", password="other-password", role="admin",
                           exist_ok=True)
    assert again.username == "cici"
    # exist_ok leaves the existing user as it was: the old password still works.
    await login(pool, "cici", "long-enough", "10.0.0.3")


async def test_login_throttled_per_pair_with_account_and_address_ceilings(
        pool: asyncpg.Pool) -> None:
    await add_user(pool, username="dedi", password="password-dedi", role="panel")
    await add_user(pool, username="euis", password="password-euis", role="panel")
    limits = LoginLimits(per_pair=3, per_account=5, per_address=5)
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await login(pool, "dedi", "wrong", "10.1.0.1", limits=limits)
    # The pair (dedi, 10.1.0.1) is throttled, even with the right password...
    with pytest.raises(LoginThrottled) as caught:
        await login(pool, "dedi", "password-dedi", "10.1.0.1", limits=limits)
    assert 1 <= caught.value.retry_after <= 61
    # ... but the stranger did not lock dedi out for everyone: another client logs in,
    # and hammering on from the throttled pair does not use up the account's ceiling.
    for _ in range(10):
        with pytest.raises(LoginThrottled):
            await login(pool, "dedi", "wrong", "10.1.0.1", limits=limits)
    await login(pool, "dedi", "password-dedi", "10.9.9.9", limits=limits)
    # The account's ceiling: guesses from many addresses add up (3 + 2 more).
    for i in range(2):
        with pytest.raises(InvalidCredentials):
            await login(pool, "dedi", "wrong", f"10.1.1.{i}", limits=limits)
    with pytest.raises(LoginThrottled):
        await login(pool, "dedi", "password-dedi", "10.9.9.8", limits=limits)
    # The address ceiling: one address guessing many usernames.
    for name in ("x", "y", "z", "w", "v"):
        with pytest.raises(InvalidCredentials):
            await login(pool, name, "wrong", "10.2.0.1", limits=limits)
    with pytest.raises(LoginThrottled):
        await login(pool, "euis", "password-euis", "10.2.0.1", limits=limits)
    # Another user from another address is unaffected.
    await login(pool, "euis", "password-euis", "10.3.0.1", limits=limits)
    # The window passes.
    await pool.execute(
        "UPDATE identity.login_throttle SET window_start = now() - interval '2 min'")
    await login(pool, "dedi", "password-dedi", "10.1.0.1", limits=limits)


def test_csrf_token_is_bound_to_session_and_secret() -> None:
    a = csrf_token("secret", "session-a")
    assert verify_csrf("secret", "session-a", a)
    assert not verify_csrf("secret", "session-b", a)
    assert not verify_csrf("other-secret", "session-a", a)
    assert not verify_csrf("secret", "session-a", None)
    assert not verify_csrf("secret", "session-a", "")


def _app(settings: Settings, pool: asyncpg.Pool) -> web.Application:
    app = create_base_app(settings, "identity-test", title="t")

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        app[keys.POOL] = pool
        yield

    app.cleanup_ctx.append(pool_ctx)
    add_auth_routes(app)

    async def protected(request: web.Request) -> web.Response:
        user = await require_user(request, roles=("staff",))
        return web.json_response({"user": user.username})

    app.router.add_route("*", "/protected", protected)
    return app


async def test_login_endpoint_cookie_bearer_csrf_and_throttle(database_url: str,
                                                                pool: asyncpg.Pool) -> None:
    settings = Settings.from_env({}, database_url=database_url, login_rate_limit_per_minute=3)
    await add_user(pool, username="fitri", password="password-fitri", role="staff",
                   agency="MDN-PUPR")
    await add_user(pool, username="gani", password="password-gani", role="panel")
    async with running_app(_app(settings, pool)) as client:
        r = await client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
        unknown = await r.json()
        assert r.status == 401
        r = await client.post("/api/v1/auth/login",
                              json={"username": "fitri", "password": "wrong"})
        wrong = await r.json()
        assert r.status == 401
        assert unknown == wrong  # unknown user and wrong password look the same
        assert wrong["error"]["code"] == "unauthorized"

        r = await client.post("/api/v1/auth/login",
                              json={"username": "fitri", "password": "password-fitri"})
        body = await r.json()
        assert r.status == 200
        assert body["user"]["username"] == "fitri" and body["user"]["agency"] == "MDN-PUPR"
        cookie = r.headers["Set-Cookie"]
        assert f"{SESSION_COOKIE}={body['token']}" in cookie
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

        # Bearer works, no CSRF needed.
        client.session.cookie_jar.clear()
        r = await client.post("/protected", headers={"Authorization": f"Bearer {body['token']}"})
        assert r.status == 200 and (await r.json())["user"] == "fitri"
        # The cookie works for reading; changes need the CSRF token.
        jar = {SESSION_COOKIE: body["token"]}
        r = await client.get("/protected", cookies=jar)
        assert r.status == 200
        r = await client.post("/protected", cookies=jar)
        assert r.status == 403 and (await r.json())["error"]["code"] == "csrf_failed"
        r = await client.post("/protected", cookies=jar,
                              headers={"X-CSRF-Token": csrf_token(settings.secret_key, "x")})
        assert r.status == 403
        r = await client.post("/protected", cookies=jar, headers={
            "X-CSRF-Token": csrf_token(settings.secret_key, body["token"])})
        assert r.status == 200
        r = await client.post("/protected", cookies=jar,
                              data={"csrf_token": csrf_token(settings.secret_key, body["token"])})
        assert r.status == 200
        # Role check and no credentials.
        r = await client.post("/api/v1/auth/login",
                              json={"username": "gani", "password": "password-gani"})
        panel = (await r.json())["token"]
        client.session.cookie_jar.clear()
        r = await client.get("/protected", headers={"Authorization": f"Bearer {panel}"})
        assert r.status == 403
        r = await client.get("/protected")
        assert r.status == 401

        # Throttle: the limit is 3 failures a minute per (user, client); the success
        # above started the pair afresh.
        for _ in range(3):
            await client.post("/api/v1/auth/login",
                              json={"username": "fitri", "password": "wrong"})
        r = await client.post("/api/v1/auth/login",
                              json={"username": "fitri", "password": "password-fitri"})
        assert r.status == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert (await r.json())["error"]["code"] == "rate_limited"
        r = await client.post("/api/v1/auth/login", json={"username": "fitri"})
        assert r.status == 422


async def test_cli_users_add_validates_agency_against_catalog(database_url: str,
                                                                pool: asyncpg.Pool) -> None:
    env = process_env(database_url, "127.0.0.1:9")

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "awasi", "users", "add", *args],  # noqa: S603
                              env=env, capture_output=True, text=True, timeout=60,
                              check=False, input=stdin)

    bad = run("--username", "hana", "--role", "staff", "--agency", "NO-SUCH-AGENCY",
              stdin="kunang-kunang-senja-77\n")
    assert bad.returncode == 2 and "unknown agency" in bad.stderr
    ok = run("--username", "hana", "--role", "staff",
             "--agency", "MDN-INSPEKTORAT", "--name", "Hana", stdin="kunang-kunang-senja-77\n")
    assert ok.returncode == 0, ok.stderr
    assert "warning" not in ok.stderr
    row = await pool.fetchrow("SELECT * FROM identity.users WHERE username = 'hana'")
    assert row["agency"] == "MDN-INSPEKTORAT" and row["role"] == "staff"
    assert row["display_name"] == "Hana"
    # --password still works for old scripts, with a warning on stderr.
    dup = run("--username", "hana", "--password", "kunang-kunang-senja-77", "--role", "panel")
    assert dup.returncode == 1 and "UserExists" in dup.stderr
    assert "warning: --password is visible" in dup.stderr
    await login(pool, "hana", "kunang-kunang-senja-77", "127.0.0.1")


def test_migrations_stays_a_function_after_the_sql_package_is_imported() -> None:
    import importlib

    import awasi.identity

    importlib.import_module("awasi.identity.migrations")
    assert callable(awasi.identity.migrations)
    assert [m.name for m in awasi.identity.migrations()] == ["0100_init.sql",
                                                             "0110_login_throttle.sql",
                                                             "0300_accounts.sql"]
    assert awasi.identity.SCHEMA == "identity"
