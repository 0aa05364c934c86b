"""Open311 GeoReport v2 in JSON and XML: discovery, services, service definitions,
POST and GET requests, tokens, and the spec's errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from xml.etree import ElementTree as ET

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from awasi.events import topics
from awasi.settings import Settings
from tests.support.intake import routed_env
from tests.support.kafka import publish, read_topic
from tests.support.services import running_service
from tests.support.wait import eventually

BASE = "/open311/v2"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    async with running_service("intake", settings.with_(rate_limit_per_minute=10_000)) as c:
        yield c


def request_form(**over: str) -> dict[str, str]:
    form = {"jurisdiction_id": "MDN", "service_code": "jalan-rusak",
            "description": "Jalan berlubang besar dekat pasar, berbahaya bagi motor.",
            "lat": "3.5952", "long": "98.6722", "first_name": "Dewi", "last_name": "Lestari",
            "email": "dewi.lestari@example.id", "phone": "+62 813 7777 8888",
            "media_url": "https://example.org/p.jpg"}
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


async def xml(r: object) -> ET.Element:
    text = await r.text()  # type: ignore[attr-defined]
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text)


async def test_discovery_both_formats(client: TestClient) -> None:
    r = await client.get(f"{BASE}/discovery.json")
    body = await r.json()
    assert r.status == 200
    ep = body["endpoints"][0]
    assert ep["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert set(ep["formats"]) == {"text/xml", "application/json"}
    r = await client.get(f"{BASE}/discovery.xml")
    assert r.headers["Content-Type"].startswith("text/xml")
    root = await xml(r)
    assert root.tag == "discovery"
    formats = [f.text for f in root.findall("./endpoints/endpoint/formats/format")]
    assert "text/xml" in formats


async def test_services_and_definitions(client: TestClient) -> None:
    r = await client.get(f"{BASE}/services.json?jurisdiction_id=MDN")
    services = await r.json()
    codes = {s["service_code"] for s in services}
    assert {"asn-pungli", "jalan-rusak"} <= codes
    s = next(s for s in services if s["service_code"] == "jalan-rusak")
    assert s["type"] == "realtime" and s["metadata"] is True and s["service_name"]
    root = await xml(await client.get(f"{BASE}/services.xml?jurisdiction_id=MDN"))
    assert root.tag == "services"
    assert {e.text for e in root.findall("./service/service_code")} == codes
    assert root.find("./service/metadata").text == "true"  # type: ignore[union-attr]

    r = await client.get(f"{BASE}/services/jalan-rusak.json?jurisdiction_id=MDN")
    d = await r.json()
    assert d["service_code"] == "jalan-rusak"
    assert d["attributes"][0]["code"] == "privacy"
    assert [v["key"] for v in d["attributes"][0]["values"]] == ["named", "confidential",
                                                                "anonymous"]
    assert d["attributes"][1]["code"] == "visibility"
    assert [v["key"] for v in d["attributes"][1]["values"]] == ["private", "public"]
    root = await xml(await client.get(f"{BASE}/services/jalan-rusak.xml"))
    assert root.tag == "service_definition"
    assert root.find("./attributes/attribute/code").text == "privacy"  # type: ignore[union-attr]

    # 404s in the spec's error format.
    r = await client.get(f"{BASE}/services/no-such.json")
    assert r.status == 404
    errs = await r.json()
    assert errs[0]["code"] == 404 and "service_code" in errs[0]["description"]
    r = await client.get(f"{BASE}/services.xml?jurisdiction_id=XXX")
    assert r.status == 404
    root = await xml(r)
    assert root.tag == "errors"
    assert root.find("./error/code").text == "404"  # type: ignore[union-attr]
    assert "jurisdiction_id" in (root.find("./error/description").text or "")  # type: ignore[union-attr]


async def test_post_request_json_then_get_it(client: TestClient, settings: Settings) -> None:
    # Private by default: stored, but Open311 answers its id like an unknown one.
    r = await client.post(f"{BASE}/requests.json", data=request_form())
    private = (await r.json())[0]
    assert r.status == 200 and private["secret"]
    r = await client.get(f"{BASE}/requests/{private['service_request_id']}.json")
    assert r.status == 404
    assert await (await client.get(f"{BASE}/requests.json")).json() == []

    r = await client.post(f"{BASE}/requests.json",
                          data=request_form(**{"attribute[visibility]": "public"}))
    body = await r.json()
    assert r.status == 200, body
    sr = body[0]
    code = sr["service_request_id"]
    assert code.startswith("MDN-") and sr["secret"] and sr["token"]

    conn = await asyncpg.connect(settings.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT c.privacy, c.visibility, c.channel, c.lat, c.media_url, r.name, r.email"
            " FROM intake.complaints c JOIN intake.reporters r ON r.complaint_id = c.id"
            " WHERE c.tracking_code = $1", code)
        assert await conn.fetchval("SELECT visibility FROM intake.complaints WHERE"
                                   " tracking_code = $1", private["service_request_id"]) == (
            "private")
    finally:
        await conn.close()
    assert row["privacy"] == "confidential" and row["channel"] == "open311"
    assert row["visibility"] == "public"
    assert row["name"] == "Dewi Lestari" and row["email"] == "dewi.lestari@example.id"
    assert row["lat"] == pytest.approx(3.5952)
    assert row["media_url"] == "https://example.org/p.jpg"

    r = await client.get(f"{BASE}/requests/{code}.json")
    got = (await r.json())[0]
    assert got["service_request_id"] == code and got["status"] == "open"
    assert got["service_code"] == "jalan-rusak"
    # Public: the report's text and place, never the reporter (nor the media link:
    # photos are not part of a public report).
    assert got["description"].startswith("Jalan berlubang") and got["lat"] == 3.5952
    assert got["media_url"] is None
    text = await r.text()
    for needle in ("Dewi", "Lestari", "7777", "dewi.lestari", "example.org"):
        assert needle not in text
    # The token resource maps the token to the request id.
    r = await client.get(f"{BASE}/tokens/{sr['token']}.json")
    assert (await r.json()) == [{"service_request_id": code, "token": sr["token"]}]

    # Routed by the router: the agency shows as responsible.
    complaint_id = sr["token"]
    await publish(settings.kafka_bootstrap or "", topics.ROUTER,
                  routed_env(complaint_id, code, "MDN-PUPR").to_bytes(),
                  key=complaint_id.encode())

    async def routed() -> dict[str, object] | None:
        got = (await (await client.get(f"{BASE}/requests/{code}.json")).json())[0]
        return got if got["agency_responsible"] else None

    got = await eventually(routed)
    assert "PUPR" in str(got["agency_responsible"]) or "Pekerjaan" in str(
        got["agency_responsible"])
    assert got["expected_datetime"]

    msgs = await read_topic(settings.kafka_bootstrap or "", topics.INTAKE,
                            until=lambda ms: len(ms) >= 1)
    assert msgs[0]["payload"]["channel"] == "open311"
    assert "Dewi" not in msgs[0]["_raw"] and "dewi.lestari" not in msgs[0]["_raw"]


async def test_post_request_xml_named_and_listing(client: TestClient) -> None:
    r = await client.post(f"{BASE}/requests.xml", data=request_form(**{
        "attribute[privacy]": "named", "attribute[visibility]": "public"}))
    assert r.status == 200
    root = await xml(r)
    assert root.tag == "service_requests"
    code = root.find("./request/service_request_id").text  # type: ignore[union-attr]
    assert code
    anon_form = request_form(first_name="", last_name="", email="", phone="", lat="",
                             long="", address_string="Pasar Petisah", service_code="sampah")
    anon = await client.post(f"{BASE}/requests.json",
                             data={**anon_form, "attribute[visibility]": "public"})
    anon_code = (await anon.json())[0]["service_request_id"]
    hidden = await client.post(f"{BASE}/requests.json", data={
        **anon_form, "description": "Sampah pribadi, laporan tertutup di Pasar Petisah."})
    hidden_code = (await hidden.json())[0]["service_request_id"]

    root = await xml(await client.get(f"{BASE}/requests.xml?jurisdiction_id=MDN"))
    reqs = {e.find("service_request_id").text: e for e in root.findall("./request")}  # type: ignore[union-attr]
    assert set(reqs) == {code, anon_code}  # the private one is not listed
    named = reqs[code]
    assert named.find("description").text.startswith("Jalan berlubang")  # type: ignore[union-attr]
    assert named.find("lat").text == "3.5952"  # type: ignore[union-attr]
    assert named.find("status").text == "open"  # type: ignore[union-attr]
    # A public anonymous report shows its text and address too: visibility, not
    # identity, decides what is published.
    assert reqs[anon_code].find("address").text == "Pasar Petisah"  # type: ignore[union-attr]
    text = ET.tostring(root, encoding="unicode")
    assert "Dewi" not in text and "dewi.lestari" not in text and "7777" not in text
    assert "pribadi" not in text

    r = await client.get(f"{BASE}/requests.json?service_code=sampah")
    assert [x["service_request_id"] for x in await r.json()] == [anon_code]
    r = await client.get(
        f"{BASE}/requests.json?service_request_id={code},{anon_code},{hidden_code}")
    assert len(await r.json()) == 2
    r = await client.get(f"{BASE}/requests.json?status=closed")
    assert await r.json() == []
    r = await client.get(f"{BASE}/requests.json?status=bogus")
    assert r.status == 400


POST_ERRORS = [
    ({"jurisdiction_id": ""}, 400, "jurisdiction_id"),
    ({"jurisdiction_id": "XXX"}, 404, "jurisdiction_id"),
    ({"service_code": ""}, 400, "service_code"),
    ({"service_code": "no-such"}, 400, "service_code"),
    ({"lat": "", "long": ""}, 400, "address_string"),
    ({"lat": "north"}, 400, "lat"),
    ({"description": "short"}, 400, "description"),
    ({"email": "nope"}, 400, "email"),
    ({"attribute[privacy]": "public"}, 400, "privacy"),
    ({"attribute[visibility]": "everyone"}, 400, "visibility"),
    ({"media_url": "file:///etc/passwd"}, 400, "media_url"),
]


async def test_post_request_errors(client: TestClient) -> None:
    for fmt in ("json", "xml"):
        for over, status, words in POST_ERRORS:
            r = await client.post(f"{BASE}/requests.{fmt}", data=request_form(**over))
            assert r.status == status, (fmt, over)
            if fmt == "json":
                errs = await r.json()
                assert errs[0]["code"] == status
                assert words in errs[0]["description"], (over, errs)
            else:
                root = await xml(r)
                assert root.tag == "errors"
                assert root.find("./error/code").text == str(status)  # type: ignore[union-attr]
                assert words in (root.find("./error/description").text or "")  # type: ignore[union-attr]
    r = await client.get(f"{BASE}/requests.json")
    assert await r.json() == []  # nothing was stored by the failed attempts


async def test_unknown_request_and_token(client: TestClient) -> None:
    r = await client.get(f"{BASE}/requests/MDN-ZZZZ-ZZZZ.json")
    assert r.status == 404
    assert (await r.json())[0]["code"] == 404
    r = await client.get(f"{BASE}/tokens/not-a-token.xml")
    assert r.status == 404
    assert (await xml(r)).tag == "errors"


async def test_rate_limit_in_open311_format(settings: Settings) -> None:
    async with running_service("intake", settings.with_(rate_limit_per_minute=1)) as c:
        r = await c.post(f"{BASE}/requests.json", data=request_form())
        assert r.status == 200
        r = await c.post(f"{BASE}/requests.json", data=request_form())
        assert r.status == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert (await r.json())[0]["code"] == 429
