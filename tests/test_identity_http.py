"""One staff identity over HTTP, across the two services that use it: a token from
the router's login answers ``/api/v1/auth/me`` at both; logging out at one revokes it
at both, for the Bearer header and the session cookie alike."""

from __future__ import annotations

from awasi.db import create_pool
from awasi.identity import add_user
from awasi.settings import Settings
from tests.support.services import running_service


async def test_me_and_logout_revoke_the_token_at_both_services(settings: Settings) -> None:
    pool = await create_pool(settings.require_database(), min_size=1, max_size=1)
    try:
        await add_user(pool, username="dewi", password="rahasia-dewi-1", role="staff",
                       agency="MDN-DISDUKCAPIL", display_name="Dewi")
    finally:
        await pool.close()
    async with running_service("router", settings) as router, \
            running_service("oversight", settings) as oversight:
        r = await router.post("/api/v1/auth/login",
                              json={"username": "dewi", "password": "rahasia-dewi-1"})
        assert r.status == 200, await r.text()
        token = (await r.json())["token"]
        router.session.cookie_jar.clear()  # each request says what it sends
        bearer = {"Authorization": f"Bearer {token}"}

        for client in (router, oversight):
            r = await client.get("/api/v1/auth/me", headers=bearer)
            assert r.status == 200, await r.text()
            me = await r.json()
            assert me["username"] == "dewi" and me["role"] == "staff"
            assert me["agency"] == "MDN-DISDUKCAPIL"
            assert "password" not in str(me).lower()
        r = await router.get("/api/v1/auth/me", cookies={"awasi_session": token})
        assert r.status == 200

        r = await oversight.post("/api/v1/auth/logout", headers=bearer)
        assert r.status == 200
        for client in (router, oversight):
            r = await client.get("/api/v1/auth/me", headers=bearer)
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "unauthorized"
        r = await router.get("/api/v1/auth/me", cookies={"awasi_session": token})
        assert r.status == 401
        r = await router.get("/api/v1/tickets", headers=bearer)
        assert r.status == 401
        # Logging out again with the dead token is refused, not an error.
        r = await router.post("/api/v1/auth/logout", headers=bearer)
        assert r.status == 401
