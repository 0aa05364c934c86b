"""Photos on public pages: a public report's page shows the photos sent with it
(re-encoded, no metadata) through signed links; never a private report's photos,
never the photos of a private follow-up; the link is checked again when served."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from awasi import signing
from awasi.settings import Settings
from services.intake import photos
from tests.support.images import decodes, image_bytes
from tests.support.intake import complaint
from tests.support.services import running_service


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "MarkerMake"
    exif[0x8825] = {1: "S", 2: (6.0, 12.0, 30.0), 3: "E", 4: (106.0, 49.0, 10.0)}
    return image_bytes("JPEG", size=(40, 30), exif=exif.tobytes())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def intake_settings(settings: Settings) -> Settings:
    return settings.with_(rate_limit_per_minute=10_000)


@pytest.fixture
async def client(intake_settings: Settings) -> AsyncIterator[TestClient]:
    async with running_service("intake", intake_settings) as c:
        yield c


async def _photo_ids(settings: Settings, complaint_id: str) -> dict[str, bool]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch("SELECT id, at_filing FROM intake.photos"
                                " WHERE complaint_id = $1", uuid.UUID(complaint_id))
    finally:
        await conn.close()
    return {str(r["id"]): r["at_filing"] for r in rows}


async def test_a_public_report_shows_its_own_photos_and_nothing_else(
        client: TestClient, intake_settings: Settings) -> None:
    photo = {"content_type": "image/jpeg", "data": b64(jpeg_with_gps())}
    r = await client.post("/api/v1/complaints", json=complaint(
        visibility="public", photos=[photo, photo]))
    public = await r.json()
    assert r.status == 201, public
    # A private follow-up's photo: private like its text.
    r = await client.post(f"/api/v1/complaints/{public['tracking_code']}/info", json={
        "secret": public["secret"], "message": "Foto tambahan",
        "photos": [{"content_type": "image/png", "data": b64(image_bytes("PNG"))}]})
    assert r.status == 200, await r.text()
    r = await client.post("/api/v1/complaints", json=complaint(photos=[photo]))
    private = await r.json()
    assert r.status == 201, private

    stored = await _photo_ids(intake_settings, public["complaint_id"])
    filed = sorted(pid for pid, at_filing in stored.items() if at_filing)
    followup = [pid for pid, at_filing in stored.items() if not at_filing]
    assert len(filed) == 2 and len(followup) == 1

    # --- the page: the two filed photos, by signed same-origin links -----------------
    page = await client.get(f"/reports/{public['tracking_code']}")
    html = await page.text()
    assert page.status == 200
    links = re.findall(r'<img src="([^"]+)"', html)
    assert len(links) == 2
    assert sorted(re.search(r"/photos/([0-9a-f-]+)\?", u)[1] for u in links) == filed  # type: ignore[index]
    assert followup[0] not in html
    for link in links:
        r = await client.get(link.replace("&amp;", "&"))
        assert r.status == 200 and r.content_type == "image/jpeg"
        data = await r.read()
        assert decodes(data) == ("JPEG", (40, 30))
        assert b"Exif\x00\x00" not in data and b"MarkerMake" not in data
    # The list shows no photos (one query per page) and names none.
    r = await client.get("/api/v1/reports")
    assert all("photos" not in item for item in (await r.json())["reports"])

    secret_key = intake_settings.secret_key
    code = public["tracking_code"]
    # A valid token for the follow-up's photo still gets nothing: checked when served.
    r = await client.get(photos.public_photo_link(secret_key, code, followup[0]))
    assert r.status == 404
    # --- the private report: no page, and no photo even with a well-signed link ------
    r = await client.get(f"/reports/{private['tracking_code']}")
    assert r.status == 404
    private_photo = next(iter(await _photo_ids(intake_settings, private["complaint_id"])))
    r = await client.get(photos.public_photo_link(secret_key, private["tracking_code"],
                                                  private_photo))
    assert r.status == 404
    # ... nor under a public report's code.
    r = await client.get(photos.public_photo_link(secret_key, code, private_photo))
    assert r.status == 404
    # --- tokens: tampered, for another photo, or a staff token -> 403 ----------------
    r = await client.get(f"/reports/{code}/photos/{filed[0]}?token=x{links[0][-10:]}")
    assert r.status == 403
    other = signing.sign(secret_key, photos.PUBLIC_PURPOSE, filed[1])
    r = await client.get(f"/reports/{code}/photos/{filed[0]}?token={other}")
    assert r.status == 403
    staff = signing.sign(secret_key, photos.PURPOSE, filed[0])
    r = await client.get(f"/reports/{code}/photos/{filed[0]}?token={staff}")
    assert r.status == 403
    r = await client.get(f"/reports/{code}/photos/{filed[0]}")
    assert r.status == 403
    body = await r.json()
    assert set(body["error"]) == {"code", "message", "details"}
