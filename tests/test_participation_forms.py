"""Participation in the web form, without JavaScript, against the real intake service:

- the category list follows the chosen city (a "show this city's categories" step
  that files nothing and keeps what was typed; the server refuses a category the
  city does not offer);
- similar open public reports are offered before filing, each with a support
  button, and filing anyway is one button away;
- the optional map pin is checked against the region's bounding box from the
  catalog, on the API, the form and Open311 alike (a pin in Medan for a Sorong
  complaint is refused naming the field); the catalog validates its boxes;
- the map's points API lists located public reports only.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from awasi.catalog import CatalogError, load_catalog
from awasi.settings import DEMO_CATALOG, Settings
from tests.support.intake import complaint, csrf_of, form_data
from tests.support.services import running_service

MEDAN = {"lat": 3.5952, "lon": 98.6722}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    async with running_service("intake", settings.with_(rate_limit_per_minute=10_000)) as c:
        yield c


async def count(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM intake.complaints"))
    finally:
        await conn.close()


def options(html: str, select: str) -> list[str]:
    m = re.search(rf'<select id="{select}".*?</select>', html, re.S)
    assert m, select
    return re.findall(r'<option value="([^"]+)"', m.group(0))


# --- the category list follows the city ----------------------------------------------------

async def test_category_list_follows_the_city_without_javascript(
        client: TestClient, settings: Settings) -> None:
    html = await (await client.get("/")).text()
    assert "parkir-liar" in options(html, "category")  # all categories before a city is chosen
    csrf = csrf_of(html)
    # Plaju (a district pilot) has no parking category: choosing it and pressing the
    # city step lists only Plaju's categories, keeps what was typed, files nothing.
    r = await client.post("/", data=form_data(csrf, region="PLJ", category="parkir-liar",
                                              description="Tukang parkir liar di pasar.",
                                              step="city"))
    html = await r.text()
    assert r.status == 200
    cats = options(html, "category")
    assert "parkir-liar" not in cats and "jalan-rusak" in cats
    assert 'value="PLJ" selected' in html
    assert "Tukang parkir liar di pasar." in html
    assert await count(settings) == 0
    # A category the city does not offer is refused by the server, naming the field,
    # and the form comes back with the city's own categories.
    r = await client.post("/", data=form_data(csrf, region="PLJ", category="parkir-liar"))
    html = await r.text()
    assert r.status == 422 and 'id="category-error"' in html
    assert "parkir-liar" not in options(html, "category")
    assert await count(settings) == 0
    r = await client.get("/?region=SRG")
    assert "parkir-liar" in options(await r.text(), "category")


# --- similar reports before filing ---------------------------------------------------------

async def test_similar_reports_are_offered_before_filing_and_filing_stays_one_tap_away(
        client: TestClient, settings: Settings) -> None:
    r = await client.post("/api/v1/complaints", json=complaint(
        category="jalan-rusak", visibility="public", privacy="anonymous",
        description="Lubang besar di depan sekolah dasar Jalan Gatot Subroto."))
    existing = (await r.json())["tracking_code"]
    r = await client.post("/api/v1/complaints", json=complaint(
        category="jalan-rusak", privacy="anonymous",
        description="Lubang besar di depan sekolah dasar, laporan rahasia QX-7."))
    assert r.status == 201
    csrf = csrf_of(await (await client.get("/")).text())
    r = await client.post("/", data=form_data(csrf, visibility="public"),
                          allow_redirects=False)
    html = await r.text()
    assert r.status == 200  # not filed yet: the similar reports are shown
    assert 'data-testid="similar"' in html and existing in html
    assert f'action="/reports/{existing}/support"' in html
    assert "QX-7" not in html  # a private report is never offered
    assert 'name="similar_checked" value="1"' in html
    assert "Tetap kirim laporan saya" in html
    assert "Lubang besar di depan sekolah dasar." in html  # the form kept its text
    assert await count(settings) == 2

    # Supporting the similar report from there: no new complaint.
    r = await client.post(f"/reports/{existing}/support", data={"csrf": csrf},
                          allow_redirects=False)
    assert r.status == 303
    got = await (await client.get("/api/v1/reports")).json()
    assert {x["tracking_code"]: x["support_count"] for x in got["reports"]}[existing] == 1

    # Or filing anyway: the same form, one more press.
    r = await client.post("/", data=form_data(csrf, visibility="public", similar_checked="1"),
                          allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/status/MDN-")
    assert await count(settings) == 3

    # Nothing similar (another category): filed at once, as before.
    r = await client.post("/", data=form_data(csrf, category="asn-kasar"),
                          allow_redirects=False)
    assert r.status == 303


# --- the map pin ---------------------------------------------------------------------------

async def test_pin_outside_the_region_is_refused_naming_the_field(
        client: TestClient, settings: Settings) -> None:
    # API: a pin in Medan for a Sorong complaint.
    r = await client.post("/api/v1/complaints", json=complaint(
        region="SRG", location={**MEDAN, "address": "Jl. Basuki Rahmat"}))
    body = await r.json()
    assert r.status == 422
    assert body["error"]["details"]["fields"][0]["field"] == "location"
    assert "Kota Sorong" in body["error"]["details"]["fields"][0]["message"]
    r = await client.post("/api/v1/complaints", json=complaint(location={"lat": 3.59}))
    assert r.status == 422
    assert (await r.json())["error"]["details"]["fields"][0]["field"] == "location"
    # Inside: accepted.
    r = await client.post("/api/v1/complaints", json=complaint(
        region="SRG", location={"lat": -0.8762, "lon": 131.2558}))
    assert r.status == 201

    # The form: the typed (or map-filled) coordinates get the same check.
    csrf = csrf_of(await (await client.get("/")).text())
    r = await client.post("/", data=form_data(csrf, region="SRG", lat="3.5952",
                                              lon="98.6722"))
    html = await r.text()
    assert r.status == 422 and 'id="pin-error"' in html
    assert "harus berada di dalam kota" in html
    r = await client.post("/", data=form_data(csrf, lat="utara", lon="98.6"))
    assert r.status == 422 and 'id="pin-error"' in await r.text()
    # A decimal comma is fine; the point is stored.
    r = await client.post("/", data=form_data(csrf, lat="3,5952", lon="98,6722"),
                          allow_redirects=False)
    assert r.status == 303
    conn = await asyncpg.connect(settings.database_url)
    try:
        row = await conn.fetchrow("SELECT lat, lon FROM intake.complaints WHERE channel = 'web'")
    finally:
        await conn.close()
    assert (row["lat"], row["lon"]) == (3.5952, 98.6722)
    # Without JavaScript the address alone still files.
    r = await client.post("/", data=form_data(csrf, category="sampah"), allow_redirects=False)
    assert r.status == 303

    # Open311's lat/long fill the same field and get the same check.
    r = await client.post("/open311/v2/requests.json", data={
        "jurisdiction_id": "SRG", "service_code": "jalan-rusak", "lat": "3.5952",
        "long": "98.6722", "description": "Jalan berlubang di depan pasar."})
    body = await r.json()
    assert r.status == 400 and body[0]["description"].startswith("location:")


def test_catalog_bounding_boxes_are_validated(tmp_path: Path) -> None:
    catalog = load_catalog(DEMO_CATALOG)
    for code in ("MDN", "PLJ", "SWL", "PKY", "SRG"):
        assert catalog.regions[code].bbox is not None, code
    assert catalog.regions["MDN"].bbox.contains(3.5952, 98.6722)  # type: ignore[union-attr]
    assert not catalog.regions["SRG"].bbox.contains(3.5952, 98.6722)  # type: ignore[union-attr]
    text = DEMO_CATALOG.read_text().replace(
        "bbox: {south: -1.00, west: 131.15, north: -0.76, east: 131.45}",
        "bbox: {south: -0.70, west: 131.15, north: -0.76, east: 131.45}")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(CatalogError) as e:
        load_catalog(bad)
    line = text[:text.index("south: -0.70")].count("\n") + 1
    assert f"bad.yaml:{line}:" in str(e.value) and "south must be less than north" in str(e.value)


# --- the map's points ----------------------------------------------------------------------

async def test_map_points_are_located_public_reports_only(client: TestClient) -> None:
    async def post(**over: Any) -> str:
        r = await client.post("/api/v1/complaints", json=complaint(**over))
        assert r.status == 201
        return str((await r.json())["tracking_code"])

    located = await post(visibility="public", privacy="anonymous")
    unlocated = await post(visibility="public", privacy="anonymous",
                           location={"address": "Pasar Petisah"})
    private = [await post(privacy=m) for m in ("named", "confidential", "anonymous")]
    sorong = await post(visibility="public", region="SRG", privacy="anonymous",
                        location={"lat": -0.8762, "lon": 131.2558})
    r = await client.get("/api/v1/reports/map")
    body = await r.json()
    assert r.status == 200 and body["truncated"] is False
    codes = [p["tracking_code"] for p in body["points"]]
    assert sorted(codes) == sorted([located, sorong])
    assert unlocated not in codes and not set(private) & set(codes)
    assert set(body["points"][0]) == {"tracking_code", "title", "lat", "lon", "status",
                                      "support_count"}
    text = await r.text()
    assert "Siti" not in text and "5550" not in text
    r = await client.get("/api/v1/reports/map?region=SRG")
    assert [p["tracking_code"] for p in (await r.json())["points"]] == [sorong]
    r = await client.get("/api/v1/reports/map?page=abc")
    assert r.status == 422
    assert (await r.json())["error"]["details"]["fields"][0]["field"] == "page"
    # The pages that show a map allow our own scripts and the tile server, no more.
    r = await client.get("/reports")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "https://tile.openstreetmap.org" in csp
    r = await client.get(f"/status/{located}")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "tile.openstreetmap.org" not in csp
