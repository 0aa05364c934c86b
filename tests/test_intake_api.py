"""Intake's JSON API against the real embedded PostgreSQL and broker: every endpoint,
every privacy mode, the error paths, idempotent retries, photos, the reporter
lookup, and that no personal data of a confidential or anonymous reporter reaches a
topic."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from awasi import signing
from awasi.events import topics
from awasi.settings import Settings
from awasi.web import keys as web_keys
from tests.support.images import decodes
from tests.support.intake import (  # noqa: F401 - resolved_env, status_of: re-exported
    JPEG,
    PNG,
    WEBP,
    complaint,
    resolved_env,
    routed_env,
    status_of,
    submit,
)
from tests.support.kafka import read_all, read_topic
from tests.support.services import running_service
from tests.support.wait import eventually


@pytest.fixture
def intake_settings(settings: Settings) -> Settings:
    return settings.with_(rate_limit_per_minute=10_000)


@pytest.fixture
async def client(intake_settings: Settings) -> AsyncIterator[TestClient]:
    async with running_service("intake", intake_settings) as c:
        yield c


# --- submitting ----------------------------------------------------------------------

@pytest.mark.parametrize("privacy", ["named", "confidential", "anonymous"])
async def test_submit_each_privacy_mode(client: TestClient, privacy: str,
                                        intake_settings: Settings) -> None:
    body = await submit(client, privacy=privacy)
    code = body["tracking_code"]
    assert code.startswith("MDN-")
    assert len(code) == len("MDN-7KQ4-X2PA")
    assert set(code[4:].replace("-", "")) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert body["secret"] and body["privacy"] == privacy
    uuid.UUID(body["complaint_id"])
    assert body["status_url"] == f"/api/v1/complaints/{code}"

    # Every mode's receipt carries a secret, and that secret opens the conversation;
    # the code alone shows the status only (tests/test_privacy_visibility.py has more).
    r = await client.get(body["status_url"])
    status = await r.json()
    assert r.status == 200
    assert status["tracking_code"] == code
    assert status["status"] == "submitted" and status["access"] == "status"
    assert "timeline" not in status and "description" not in status
    status = await status_of(client, code, body["secret"])
    assert status["access"] == "conversation"
    assert status["timeline"][0]["kind"] == "submitted"
    assert status["description"].startswith("Petugas meminta uang")
    text = json.dumps(status)
    assert "Siti" not in text and "5550 1234" not in text and "example.id" not in text

    conn = await asyncpg.connect(intake_settings.database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM intake.reporters WHERE complaint_id = $1",
                                  uuid.UUID(body["complaint_id"]))
        secret_hash = await conn.fetchval(
            "SELECT secret_hash FROM intake.complaints WHERE tracking_code = $1", code)
    finally:
        await conn.close()
    if privacy == "anonymous":
        assert row is None  # nothing kept, even though a name was typed
    else:
        assert row["name"] == "Siti Rahmawati"
    assert body["secret"].encode() not in bytes(secret_hash)
    assert len(bytes(secret_hash)) == 32


async def test_no_personal_data_on_the_topic(client: TestClient,
                                             intake_settings: Settings) -> None:
    conf = await submit(client, privacy="confidential")
    anon = await submit(client, privacy="anonymous")
    named = await submit(client, privacy="named")
    ids = {conf["complaint_id"], anon["complaint_id"], named["complaint_id"]}
    assert intake_settings.kafka_bootstrap
    msgs = await read_topic(
        intake_settings.kafka_bootstrap, topics.INTAKE,
        until=lambda ms: {m.get("complaint_id") for m in ms} >= ids)
    submitted = [m for m in msgs if m["type"] == "complaint.submitted"]
    assert len(submitted) == 3
    for m in msgs:
        # Whole phone forms: short digit runs like "812" turn up in random ids.
        for needle in ("Siti", "Rahmawati", "812 5550 1234", "81255501234", "5550 1234",
                       "siti.rahma", "example.id"):
            assert needle not in m["_raw"], (needle, m["_raw"])
        assert m["_key"] == m["complaint_id"]
    refs = {m["payload"]["reporter_ref"] for m in submitted}
    assert len(refs) == 3
    by_id = {m["complaint_id"]: m for m in submitted}
    assert by_id[anon["complaint_id"]]["payload"]["privacy"] == "anonymous"
    assert by_id[conf["complaint_id"]]["payload"]["tracking_code"] == conf["tracking_code"]


async def test_named_report_needs_a_name(client: TestClient) -> None:
    body = await submit(client, 422, reporter={"phone": "+62 812 5550 1234"})
    assert body["error"]["details"]["fields"][0]["field"] == "reporter.name"


INVALID = [
    ({"region": "XXX"}, "region"),
    ({"category": "no-such-category"}, "category"),
    ({"description": "short"}, "description"),
    ({"description": "   x        "}, "description"),
    ({"description": "x" * 4001}, "description"),
    ({"privacy": "secret"}, "privacy"),
    ({"visibility": "everyone"}, "visibility"),
    ({"location": {"lat": "north", "lon": 98.6}}, "location.lat"),
    ({"location": {"lat": 91, "lon": 98.6}}, "location.lat"),
    ({"reporter": {"name": "A", "email": "not-an-email"}}, "reporter.email"),
    ({"reporter": {"name": "A", "phone": "call me"}}, "reporter.phone"),
    ({"description": 12345678901}, "description"),
    ({"title": ["a"]}, "title"),
    ({"extra_field": 1}, "extra_field"),
]


async def test_invalid_fields_are_named(client: TestClient) -> None:
    for over, field in INVALID:
        body = await submit(client, 422, **over)
        assert body["error"]["code"] == "validation_failed"
        fields = [f["field"] for f in body["error"]["details"]["fields"]]
        assert field in fields, (over, fields)


async def test_missing_required_fields(client: TestClient) -> None:
    r = await client.post("/api/v1/complaints", json={"region": "MDN"})
    body = await r.json()
    assert r.status == 422
    fields = {f["field"] for f in body["error"]["details"]["fields"]}
    assert {"category", "description"} <= fields


async def test_bad_json_and_media_type_and_size(client: TestClient,
                                                intake_settings: Settings) -> None:
    r = await client.post("/api/v1/complaints", data=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "bad_json"
    r = await client.post("/api/v1/complaints", data=b"[1, 2]",
                          headers={"Content-Type": "application/json"})
    assert r.status == 422
    r = await client.post("/api/v1/complaints", data=b"region=MDN",
                          headers={"Content-Type": "text/plain"})
    assert r.status == 415
    r = await client.post("/api/v1/complaints", data=b"--x\r\n",
                          headers={"Content-Type": "multipart/form-data"})
    assert r.status == 400  # no boundary
    r = await client.post("/open311/v2/requests.json", data=b"--x\r\n",
                          headers={"Content-Type": "multipart/form-data"})
    assert r.status == 400
    assert (await r.json())[0]["code"] == 400
    big = complaint(title="t", description="x" * 3000)
    big["padding"] = "y" * (intake_settings.max_request_bytes + 10)
    r = await client.post("/api/v1/complaints", json=big)
    assert r.status == 413
    assert (await r.json())["error"]["code"] == "payload_too_large"


async def test_multipart_over_the_upload_limit(settings: Settings) -> None:
    async with running_service("intake", settings.with_(max_upload_bytes=20_000)) as c:
        form = FormData()
        form.add_field("complaint", json.dumps(complaint()), content_type="application/json")
        form.add_field("photo", PNG + b"\0" * 30_000, filename="a.png", content_type="image/png")
        r = await c.post("/api/v1/complaints", data=form)
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "payload_too_large"


async def test_rate_limit_answers_429_with_retry_after(settings: Settings) -> None:
    async with running_service("intake", settings.with_(rate_limit_per_minute=2)) as c:
        await submit(c)
        await submit(c)
        r = await c.post("/api/v1/complaints", json=complaint())
        assert r.status == 429
        assert int(r.headers["Retry-After"]) >= 1
        body = await r.json()
        assert body["error"]["code"] == "rate_limited"
        # Reading the status is not a submission: not limited.
        r = await c.get("/api/v1/regions")
        assert r.status == 200


# --- idempotency -----------------------------------------------------------------------

async def test_idempotent_retry_returns_the_first_answer(client: TestClient,
                                                         intake_settings: Settings) -> None:
    key = str(uuid.uuid4())
    payload = complaint(privacy="anonymous")
    r1 = await client.post("/api/v1/complaints", json=payload, headers={"Idempotency-Key": key})
    b1 = await r1.json()
    assert r1.status == 201, b1
    r2 = await client.post("/api/v1/complaints", json=payload, headers={"Idempotency-Key": key})
    b2 = await r2.json()
    assert r2.status == 201
    assert b2 == b1
    # Concurrent retries all get the same answer, and one complaint exists.
    results = await asyncio.gather(*(
        client.post("/api/v1/complaints", json=payload, headers={"Idempotency-Key": key})
        for _ in range(5)))
    assert {(await r.json())["tracking_code"] for r in results} == {b1["tracking_code"]}
    # The secret still works (it is derived, not stored).
    r = await client.post(f"/api/v1/complaints/{b1['tracking_code']}/withdraw",
                          json={"secret": b1["secret"]})
    assert r.status == 200
    # Same key, different body: 409.
    r3 = await client.post("/api/v1/complaints", json=complaint(description="Another thing "
                                                                "entirely, different."),
                           headers={"Idempotency-Key": key})
    assert r3.status == 409
    assert (await r3.json())["error"]["code"] == "idempotency_key_reused"
    conn = await asyncpg.connect(intake_settings.database_url)
    try:
        n = await conn.fetchval("SELECT count(*) FROM intake.complaints")
        events = await conn.fetchval(
            "SELECT count(*) FROM intake.outbox WHERE event_type = 'complaint.submitted'")
    finally:
        await conn.close()
    assert n == 1 and events == 1


async def test_concurrent_submissions_are_all_stored(client: TestClient,
                                                     intake_settings: Settings) -> None:
    results = await asyncio.gather(*(client.post("/api/v1/complaints", json=complaint())
                                     for _ in range(40)))
    codes = set()
    for r in results:
        assert r.status == 201
        codes.add((await r.json())["tracking_code"])
    assert len(codes) == 40
    conn = await asyncpg.connect(intake_settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM intake.complaints") == 40
        assert await conn.fetchval("SELECT count(*) FROM intake.outbox") == 40
    finally:
        await conn.close()


# --- photos ----------------------------------------------------------------------------

async def test_photos_in_json_and_signed_links(client: TestClient,
                                               intake_settings: Settings) -> None:
    photos = [{"content_type": "image/png", "data": base64.b64encode(PNG).decode()},
              {"content_type": "image/jpeg", "data": base64.b64encode(JPEG).decode()},
              {"content_type": "image/webp", "data": base64.b64encode(WEBP).decode()}]
    body = await submit(client, photos=photos)
    msgs = await read_topic(intake_settings.kafka_bootstrap or "", topics.INTAKE,
                            until=lambda ms: len(ms) >= 1)
    photo_ids = msgs[0]["payload"]["photo_ids"]
    assert len(photo_ids) == 3
    assert msgs[0]["complaint_id"] == body["complaint_id"]
    token = signing.sign(intake_settings.secret_key, "photo", photo_ids[0])
    r = await client.get(f"/photos/{photo_ids[0]}?token={token}")
    assert r.status == 200
    assert r.headers["Content-Type"] == "image/png"
    # Re-encoded at intake: still a PNG of the same size, not the same bytes.
    assert decodes(await r.read()) == decodes(PNG)
    # A token for another photo, or a forged one, is refused.
    r = await client.get(f"/photos/{photo_ids[1]}?token={token}")
    assert r.status == 403
    r = await client.get(f"/photos/{photo_ids[1]}?token=forged")
    assert r.status == 403
    other = signing.sign(intake_settings.secret_key, "reporter", photo_ids[1])
    r = await client.get(f"/photos/{photo_ids[1]}?token={other}")
    assert r.status == 403


async def test_expired_photo_link_is_refused(client: TestClient,
                                             intake_settings: Settings) -> None:
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    body = await submit(client, photos=[{"content_type": "image/png",
                                         "data": base64.b64encode(PNG).decode()}])
    msgs = await read_topic(intake_settings.kafka_bootstrap or "", topics.INTAKE,
                            until=lambda ms: len(ms) >= 1)
    pid = msgs[0]["payload"]["photo_ids"][0]
    assert msgs[0]["complaint_id"] == body["complaint_id"]

    class OldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 3700

    token = URLSafeTimedSerializer(intake_settings.secret_key, salt="awasi.photo",
                                   signer=OldSigner).dumps(pid)
    r = await client.get(f"/photos/{pid}?token={token}")
    assert r.status == 403


async def test_bad_photo_is_rejected(client: TestClient) -> None:
    for photo, type_ in [
        ({"content_type": "image/png", "data": base64.b64encode(b"GIF89a....").decode()},
         "photo_type"),
        ({"content_type": "image/png", "data": "!!!not base64!!!"}, "photo_base64"),
        ({"content_type": "image/png", "data": ""}, "photo_empty"),
        ({"content_type": "image/png",
          "data": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * 1024 * 1024)).decode()},
         "photo_too_large"),
    ]:
        # A big photo in JSON meets the JSON body limit first (413); see the multipart test.
        body = await submit(client, 422 if type_ != "photo_too_large" else 413, photos=[photo])
        if type_ == "photo_too_large":
            assert body["error"]["code"] == "payload_too_large"
            continue
        f = body["error"]["details"]["fields"][0]
        assert f["field"] == "photos.0" and f["type"] == type_


async def test_too_many_photos(client: TestClient) -> None:
    p = {"content_type": "image/png", "data": base64.b64encode(PNG).decode()}
    body = await submit(client, 422, photos=[p] * 4)
    assert body["error"]["details"]["fields"][0]["field"] == "photos"


async def test_multipart_submission_with_photos(client: TestClient,
                                                intake_settings: Settings) -> None:
    form = FormData()
    form.add_field("complaint", json.dumps(complaint(privacy="confidential")),
                   content_type="application/json")
    form.add_field("photo", JPEG, filename="a.jpg", content_type="image/jpeg")
    form.add_field("photo", PNG, filename="b.png", content_type="image/png")
    r = await client.post("/api/v1/complaints", data=form)
    body = await r.json()
    assert r.status == 201, body
    conn = await asyncpg.connect(intake_settings.database_url)
    try:
        types = sorted(await conn.fetchval(
            "SELECT array_agg(content_type) FROM intake.photos WHERE complaint_id = $1",
            uuid.UUID(body["complaint_id"])))
    finally:
        await conn.close()
    assert types == ["image/jpeg", "image/png"]
    form = FormData()
    form.add_field("complaint", json.dumps(complaint()), content_type="application/json")
    form.add_field("photo", b"%PDF-1.4 not an image", filename="x.png",
                   content_type="image/png")
    r = await client.post("/api/v1/complaints", data=form)
    assert r.status == 422
    form = FormData()
    form.add_field("complaint", json.dumps(complaint()), content_type="application/json")
    form.add_field("photo", PNG + b"\0" * (5 * 1024 * 1024), filename="big.png",
                   content_type="image/png")
    r = await client.post("/api/v1/complaints", data=form)
    assert r.status == 422
    assert (await r.json())["error"]["details"]["fields"][0]["type"] == "photo_too_large"


# --- catalog ---------------------------------------------------------------------------

async def test_regions_and_categories(client: TestClient) -> None:
    r = await client.get("/api/v1/regions")
    regions = await r.json()
    assert {"MDN", "PLJ", "SWL", "PKY", "SRG"} <= {x["code"] for x in regions}
    r = await client.get("/api/v1/categories?region=MDN")
    cats = await r.json()
    assert "asn-pungli" in {c["code"] for c in cats}
    assert all(c["name_id"] and c["name_en"] for c in cats)
    r = await client.get("/api/v1/categories?region=NOPE")
    assert r.status == 422
    assert (await r.json())["error"]["details"]["fields"][0]["field"] == "region"


# --- follow-ups ------------------------------------------------------------------------

# --- the router desk's reporter lookup ---------------------------------------------------

async def test_reporter_lookup_only_for_named(client: TestClient,
                                              intake_settings: Settings) -> None:
    key = intake_settings.secret_key
    named = await submit(client, privacy="named")
    conf = await submit(client, privacy="confidential")
    anon = await submit(client, privacy="anonymous")

    async def lookup(cid: str, token: str | None = None) -> Any:
        t = token or signing.sign(key, "reporter", cid)
        return await client.get(f"/internal/v1/complaints/{cid}/reporter?token={t}")

    r = await lookup(named["complaint_id"])
    assert r.status == 200
    assert await r.json() == {"name": "Siti Rahmawati", "phone": "+62 812 5550 1234",
                              "email": "siti.rahma@example.id"}
    bodies = []
    for cid in (conf["complaint_id"], anon["complaint_id"], str(uuid.uuid4())):
        r = await lookup(cid)
        assert r.status == 404
        bodies.append(await r.json())
    assert bodies[0] == bodies[1] == bodies[2]  # never says which case it was
    r = await lookup(named["complaint_id"], signing.sign(key, "reporter", conf["complaint_id"]))
    assert r.status == 403
    r = await lookup(named["complaint_id"], signing.sign(key, "photo", named["complaint_id"]))
    assert r.status == 403


async def test_openapi_describes_the_api(client: TestClient) -> None:
    r = await client.get("/openapi.json")
    doc = await r.json()
    for path in ("/api/v1/complaints", "/api/v1/complaints/{tracking_code}",
                 "/api/v1/complaints/{tracking_code}/feedback",
                 "/api/v1/complaints/{tracking_code}/info", "/api/v1/regions",
                 "/api/v1/categories", "/internal/v1/complaints/{complaint_id}/reporter",
                 "/api/v1/reports"):
        assert path in doc["paths"], path
    assert "ComplaintIn" in doc["components"]["schemas"]
    assert "201" in doc["paths"]["/api/v1/complaints"]["post"]["responses"]


async def test_all_topics_free_of_personal_data_after_a_busy_run(
        intake_settings: Settings) -> None:
    """The three services run; complaints in every mode, with contact details, go all
    the way through (routed by the router, on oversight's timeline), with information
    added; then every topic is read from the beginning."""
    bootstrap = intake_settings.kafka_bootstrap or ""
    async with running_service("intake", intake_settings) as client, \
            running_service("router", intake_settings), \
            running_service("oversight", intake_settings):
        codes = []
        for privacy in ("named", "confidential", "anonymous"):
            over: dict[str, Any] = {"privacy": privacy}
            if privacy == "anonymous":
                over["reporter"] = None
            body = await submit(client, **over)
            codes.append(body["tracking_code"])
            r = await client.post(f"/api/v1/complaints/{body['tracking_code']}/info",
                                  json={"secret": body["secret"],
                                        "message": "Tambahan informasi"})
            assert r.status == 200, await r.text()

        async def through() -> bool:
            statuses = [await status_of(client, code) for code in codes]
            return all(s["agency"] for s in statuses)

        await eventually(through, within=60, what="every complaint routed")
        pool = client.server.app[web_keys.POOL]
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) = 9 FROM oversight.timeline"), within=60,
            what="submitted, info added and routed on oversight's timeline")
    seen = 0
    for topic in (*topics.ALL, topics.DEAD_LETTER):
        for m in await read_all(bootstrap, topic, settle=0.4):
            seen += 1
            raw = m.get("_raw", "") if isinstance(m, dict) else str(m)
            for needle in ("Siti", "5550 1234", "siti.rahma@example.id", "Rahmawati"):
                assert needle not in raw, (topic, raw)
    assert seen >= 9  # 3 submitted + 3 info added on intake's topic, 3 routed on router's
