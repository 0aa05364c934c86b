"""Authorization matrix: for every desk page and API endpoint, staff of one agency get
nothing of another agency's tickets (404 exactly like a ticket that does not exist),
panel members, admins and triage officers cannot act on an agency's tickets (403),
and the reporter's contact reaches the desk only for named reports.

Runs the real intake beside the router: complaints are submitted through intake's
API, routed by the router's consumer, and the desk asks intake for the contact."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp.test_utils import TestClient

from awasi.identity import SESSION_COOKIE, csrf_token
from awasi.settings import Settings
from tests.support.router import (
    bearer,
    create_users,
    login,
    router_settings,  # noqa: F401 - fixture
    wait_ticket,
)
from tests.support.services import running_service

NAME, PHONE, EMAIL = "Siti Aminah Rangkuti", "+62 812 7777 1234", "siti@example.id"

API_ACTIONS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("POST", "/acknowledge", None),
    ("POST", "/request-info", {"question": "Di mana?"}),
    ("POST", "/respond", {"message": "Sedang kami tangani."}),
    ("POST", "/resolve", {"note": "Selesai."}),
    ("POST", "/transfer", {"agency": "MDN-DLH", "reason": "Bukan wewenang"}),
]
DESK_ACTIONS: list[tuple[str, dict[str, str]]] = [
    ("/acknowledge", {}), ("/request-info", {"question": "Di mana?"}),
    ("/respond", {"message": "Halo"}), ("/resolve", {"note": "Selesai"}),
    ("/transfer", {"agency": "MDN-DLH", "reason": "Bukan wewenang"}),
]


async def _api(client: TestClient, token: str | None, method: str, path: str,
               body: dict[str, Any] | None) -> tuple[int, Any]:
    headers = bearer(token) if token else {}
    r = await client.request(method, path, headers=headers, json=body)
    return r.status, await r.json()


async def _desk(client: TestClient, token: str, secret: str, method: str, path: str,
                form: dict[str, str] | None = None) -> tuple[int, str]:
    data = None
    if method == "POST":
        data = {"csrf_token": csrf_token(secret, token), **(form or {})}
    r = await client.request(method, path, cookies={SESSION_COOKIE: token}, data=data,
                             allow_redirects=False)
    return r.status, await r.text()


async def _submit(intake: TestClient, privacy: str, description: str) -> str:
    r = await intake.post("/api/v1/complaints", json={
        "region": "MDN", "category": "jalan-rusak", "description": description,
        "privacy": privacy,
        "reporter": None if privacy == "anonymous" else
        {"name": NAME, "phone": PHONE, "email": EMAIL},
    })
    body = await r.json()
    assert r.status == 201, body
    return str(body["tracking_code"])


async def test_authorization_matrix_and_reporter_privacy(
        router_settings: Settings,  # noqa: F811 - the fixture
) -> None:
    secret = router_settings.secret_key
    async with running_service("intake", router_settings) as intake:
        settings = router_settings.with_(intake_url=str(intake.make_url("")).rstrip("/"))
        async with running_service("router", settings) as client:
            await create_users(settings.database_url or "")
            pupr = await login(client, "mdn.pupr")
            named = await _submit(intake, "named", "Jalan berlubang besar di Jl. Sisingamangaraja.")
            confidential = await _submit(intake, "confidential",
                                         "Jalan rusak dekat sekolah, berbahaya bagi anak.")
            anonymous = await _submit(intake, "anonymous", "Aspal mengelupas sepanjang 200 meter.")
            tickets = {code: await wait_ticket(client, pupr, code)
                       for code in (named, confidential, anonymous)}
            target = tickets[named]
            tid = target["id"]

            # --- reporter's contact: named only, and never in the API --------------
            status, html = await _desk(client, pupr, secret, "GET", f"/tickets/{tid}")
            assert status == 200
            assert NAME in html and PHONE in html and EMAIL in html
            for code in (confidential, anonymous):
                status, html = await _desk(client, pupr, secret, "GET",
                                           f"/tickets/{tickets[code]['id']}")
                assert status == 200 and code in html
                assert NAME not in html and PHONE not in html and EMAIL not in html
            for code in (named, confidential, anonymous):
                r = await client.get(f"/api/v1/tickets/{tickets[code]['id']}",
                                     headers=bearer(pupr))
                text = await r.text()
                assert r.status == 200 and NAME not in text and PHONE not in text

            # --- another agency's staff and head: 404, the same as no ticket at all --
            for other_name in ("mdn.dlh", "mdn.inspektorat.head"):
                other = await login(client, other_name)
                for method, suffix, body in API_ACTIONS:
                    status, got = await _api(client, other, method,
                                             f"/api/v1/tickets/{tid}{suffix}", body)
                    _, missing = await _api(client, other, method,
                                            f"/api/v1/tickets/{uuid.uuid4()}{suffix}", body)
                    _, garbage = await _api(client, other, method,
                                            f"/api/v1/tickets/not-a-ticket{suffix}", body)
                    assert status == 404, (other_name, method, suffix, got)
                    assert got == missing == garbage
                r = await client.get("/api/v1/tickets", headers=bearer(other),
                                     params={"tracking_code": named})
                assert (await r.json())["tickets"] == []
                r = await client.get("/api/v1/tickets", headers=bearer(other))
                assert all(t["agency"] != "MDN-PUPR" for t in (await r.json())["tickets"])
                status, html = await _desk(client, other, secret, "GET", f"/tickets/{tid}")
                assert status == 404 and named not in html and "Sisingamangaraja" not in html
                status, html = await _desk(client, other, secret, "GET", "/")
                assert status == 200 and named not in html
                for suffix, form in DESK_ACTIONS:
                    status, html = await _desk(client, other, secret, "POST",
                                               f"/tickets/{tid}{suffix}", form)
                    assert status == 404 and named not in html, (other_name, suffix)
            head = await login(client, "mdn.inspektorat.head")
            status, html = await _desk(client, head, secret, "GET", "/escalations")
            assert status == 200 and named not in html

            # --- panel, admin and triage officers cannot touch agency tickets: 403 ---
            for role_user in ("panel.demo", "admin.demo", "triage.mdn"):
                token = await login(client, role_user)
                for method, suffix, body in API_ACTIONS:
                    status, got = await _api(client, token, method,
                                             f"/api/v1/tickets/{tid}{suffix}", body)
                    assert status == 403, (role_user, suffix, got)
                    assert got["error"]["code"] == "forbidden"
                status, _ = await _api(client, token, "GET", "/api/v1/tickets", None)
                assert status == 403
                status, html = await _desk(client, token, secret, "GET", f"/tickets/{tid}")
                assert status == 403 and named not in html
                for suffix, form in DESK_ACTIONS:
                    status, _ = await _desk(client, token, secret, "POST",
                                            f"/tickets/{tid}{suffix}", form)
                    assert status == 403, (role_user, suffix)
            token = await login(client, "panel.demo")
            status, _ = await _desk(client, token, secret, "GET", "/")
            assert status == 403
            # An admin's home on the desk is the accounts page; no ticket shows.
            token = await login(client, "admin.demo")
            r = await client.get("/", cookies={SESSION_COOKIE: token}, allow_redirects=False)
            assert r.status == 302 and r.headers["Location"] == "/admin/accounts"
            # Staff cannot use the triage queue.
            status, _ = await _api(client, pupr, "GET", "/api/v1/triage", None)
            assert status == 403
            status, _ = await _api(client, pupr, "POST", f"/api/v1/triage/{tid}/route",
                                   {"agency": "MDN-PUPR"})
            assert status == 403
            status, _ = await _desk(client, pupr, secret, "GET", "/triage")
            assert status == 403
            # A triage officer cannot route a ticket that is not in triage: 404.
            triage = await login(client, "triage.mdn")
            status, _ = await _api(client, triage, "POST", f"/api/v1/triage/{tid}/route",
                                   {"agency": "MDN-DLH"})
            assert status == 404

            # --- no credentials, and the owner's own form without its CSRF token ---
            for method, suffix, body in API_ACTIONS:
                status, _ = await _api(client, None, method, f"/api/v1/tickets/{tid}{suffix}",
                                       body)
                assert status == 401
            r = await client.get(f"/tickets/{tid}", allow_redirects=False)
            assert r.status == 302 and r.headers["Location"].startswith("/login")
            r = await client.post(f"/tickets/{tid}/resolve", data={"note": "x"},
                                  cookies={SESSION_COOKIE: pupr}, allow_redirects=False)
            assert r.status == 403

            # Nothing of the above changed the ticket.
            r = await client.get(f"/api/v1/tickets/{tid}", headers=bearer(pupr))
            after = await r.json()
            assert after["status"] == "assigned" and after["agency"] == "MDN-PUPR"
            assert [e["kind"] for e in after["timeline"]] == ["complaint.submitted",
                                                               "complaint.routed"]
