"""Staff accounts from the command line and the self-service password change:
`awasi users list|disable|enable|passwd`, passwords from standard input only and
checked by zxcvbn, and a disabled account's tokens dead at once at both services."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest

from awasi.db import create_pool
from awasi.identity import add_user, authenticate, login
from awasi.identity.errors import InvalidCredentials
from awasi.settings import Settings
from tests.support.services import running_service
from tests.support.stack import process_env

STRONG = "kunang-kunang-senja-77"
OTHER_STRONG = "perahu-kertas-di-sungai-musi"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(database_url, min_size=1, max_size=3)
    try:
        yield p
    finally:
        await p.close()


def users(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "awasi", "users", *args],
        env=process_env(database_url, "127.0.0.1:9"), capture_output=True, text=True,
        timeout=60, check=False, input=stdin)


async def test_list_shows_accounts_without_secrets(database_url: str, pool: asyncpg.Pool) -> None:
    await add_user(pool, username="ani", password=STRONG, role="staff", agency="MDN-PUPR")
    await add_user(pool, username="budi", password=STRONG, role="panel")
    await login(pool, "ani", STRONG, "10.0.0.1")
    out = users(database_url, "list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "AGENCY", "ENABLED", "LAST", "LOGIN"]
    ani = next(line for line in lines if line.startswith("ani "))
    budi = next(line for line in lines if line.startswith("budi "))
    assert "staff" in ani and "MDN-PUPR" in ani and " yes " in ani and "UTC" in ani
    assert "panel" in budi and budi.endswith("never")
    assert "argon2" not in out.stdout and STRONG not in out.stdout


async def test_add_reads_password_from_stdin_and_refuses_weak_ones(
        database_url: str, pool: asyncpg.Pool) -> None:
    weak = users(database_url, "add", "--username", "citra", "--role", "panel",
                 stdin="password123\n")
    assert weak.returncode == 2 and "too easy to guess" in weak.stderr
    short = users(database_url, "add", "--username", "citra", "--role", "panel",
                  stdin="abc\n")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    # The username itself is a known word: citra plus a year is weak for citra.
    own = users(database_url, "add", "--username", "citra", "--role", "panel",
                stdin="citra20261\n")
    assert own.returncode == 2 and "too easy to guess" in own.stderr
    empty = users(database_url, "add", "--username", "citra", "--role", "panel")
    assert empty.returncode == 2 and "no password" in empty.stderr
    assert await pool.fetchval("SELECT count(*) FROM identity.users") == 0
    ok = users(database_url, "add", "--username", "citra", "--role", "panel",
               stdin=STRONG + "\n")
    assert ok.returncode == 0, ok.stderr
    await login(pool, "citra", STRONG, "10.0.0.1")
    audit = await pool.fetch("SELECT actor, action, target FROM identity.account_audit")
    assert [tuple(r) for r in audit] == [("cli", "add", "citra")]


async def test_passwd_reads_stdin_checks_strength_and_ends_sessions(
        database_url: str, pool: asyncpg.Pool) -> None:
    await add_user(pool, username="dewi", password=STRONG, role="triage")
    _, token = await login(pool, "dewi", STRONG, "10.0.0.1")
    weak = users(database_url, "passwd", "--username", "dewi", stdin="qwerty12345\n")
    assert weak.returncode == 2 and "too easy to guess" in weak.stderr
    assert await authenticate(pool, token) is not None  # nothing changed
    unknown = users(database_url, "passwd", "--username", "nobody", stdin=OTHER_STRONG + "\n")
    assert unknown.returncode == 1 and "no user 'nobody'" in unknown.stderr
    # The password is never an argument.
    arg = users(database_url, "passwd", "--username", "dewi", "--password", OTHER_STRONG)
    assert arg.returncode == 2 and "unrecognized arguments" in arg.stderr
    ok = users(database_url, "passwd", "--username", "dewi", stdin=OTHER_STRONG + "\n")
    assert ok.returncode == 0, ok.stderr
    assert OTHER_STRONG not in ok.stdout + ok.stderr
    assert await authenticate(pool, token) is None
    with pytest.raises(InvalidCredentials):
        await login(pool, "dewi", STRONG, "10.0.0.1")
    await login(pool, "dewi", OTHER_STRONG, "10.0.0.1")
    actions = await pool.fetch("SELECT actor, action, target, details"
                               " FROM identity.account_audit")
    assert [(r["actor"], r["action"], r["target"]) for r in actions] == [
        ("cli", "password_set", "dewi")]
    assert OTHER_STRONG not in str(actions)


async def test_disable_ends_tokens_at_router_and_oversight_at_once(settings: Settings) -> None:
    db = settings.require_database()
    pool = await create_pool(db, min_size=1, max_size=1)
    try:
        await add_user(pool, username="eko", password=STRONG, role="panel")
    finally:
        await pool.close()
    async with running_service("router", settings) as router, \
            running_service("oversight", settings) as oversight:
        r = await oversight.post("/api/v1/auth/login",
                                 json={"username": "eko", "password": STRONG})
        assert r.status == 200
        token = (await r.json())["token"]
        oversight.session.cookie_jar.clear()
        bearer = {"Authorization": f"Bearer {token}"}
        for client in (router, oversight):
            assert (await client.get("/api/v1/auth/me", headers=bearer)).status == 200

        out = users(db, "disable", "--username", "eko")
        assert out.returncode == 0, out.stderr
        for client in (router, oversight):
            r = await client.get("/api/v1/auth/me", headers=bearer)
            assert r.status == 401
            r = await client.get("/api/v1/auth/me", cookies={"awasi_session": token})
            assert r.status == 401
        r = await router.post("/api/v1/auth/login", json={"username": "eko", "password": STRONG})
        assert r.status == 401

        # Enabling brings the account back, not the old token.
        out = users(db, "enable", "--username", "eko")
        assert out.returncode == 0, out.stderr
        assert (await router.get("/api/v1/auth/me", headers=bearer)).status == 401
        r = await router.post("/api/v1/auth/login", json={"username": "eko", "password": STRONG})
        assert r.status == 200
    listed = users(db, "list").stdout
    assert next(line for line in listed.splitlines() if line.startswith("eko "))


async def test_change_own_password_over_the_api(settings: Settings) -> None:
    pool = await create_pool(settings.require_database(), min_size=1, max_size=1)
    try:
        await add_user(pool, username="fajar", password=STRONG, role="staff",
                       agency="MDN-PUPR", display_name="Fajar")
        async with running_service("router", settings) as router, \
                running_service("oversight", settings) as oversight:
            tokens = []
            for client in (router, oversight):
                r = await client.post("/api/v1/auth/login",
                                      json={"username": "fajar", "password": STRONG})
                tokens.append((await r.json())["token"])
                client.session.cookie_jar.clear()
            mine, other = ({"Authorization": f"Bearer {t}"} for t in tokens)

            r = await router.post("/api/v1/auth/password", headers=mine,
                                  json={"current_password": "salah-sekali-ini",
                                        "new_password": OTHER_STRONG})
            assert r.status == 403
            assert (await r.json())["error"]["code"] == "wrong_password"
            r = await router.post("/api/v1/auth/password", headers=mine,
                                  json={"current_password": STRONG,
                                        "new_password": "fajar2026"})
            assert r.status == 422
            body = await r.json()
            assert body["error"]["code"] == "weak_password"
            assert "characters" in body["error"]["message"]
            r = await router.post("/api/v1/auth/password", headers=mine,
                                  json={"current_password": STRONG,
                                        "new_password": "iloveyou123"})
            assert r.status == 422
            assert "too easy to guess" in (await r.json())["error"]["message"]
            assert (await oversight.get("/api/v1/auth/me", headers=other)).status == 200

            r = await router.post("/api/v1/auth/password", headers={},
                                  json={"current_password": STRONG,
                                        "new_password": OTHER_STRONG})
            assert r.status == 401
            r = await router.post("/api/v1/auth/password", headers=mine,
                                  json={"current_password": STRONG,
                                        "new_password": OTHER_STRONG})
            assert r.status == 200, await r.text()
            # The session in use stays; every other one of theirs ends.
            assert (await router.get("/api/v1/auth/me", headers=mine)).status == 200
            assert (await oversight.get("/api/v1/auth/me", headers=other)).status == 401
            r = await oversight.post("/api/v1/auth/login",
                                     json={"username": "fajar", "password": STRONG})
            assert r.status == 401
            r = await oversight.post("/api/v1/auth/login",
                                     json={"username": "fajar", "password": OTHER_STRONG})
            assert r.status == 200
        audit = await pool.fetch("SELECT actor, action, target FROM identity.account_audit")
        assert [tuple(r) for r in audit] == [("fajar", "password_changed", "fajar")]
    finally:
        await pool.close()
