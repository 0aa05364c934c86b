"""Photos keep no metadata: whatever path a photo comes by (JSON API, multipart API,
the web form's add-information form, the Telegram bot), the bytes stored in
``intake.photos`` are a fresh encoding with no EXIF (GPS, device), XMP, ICC profile,
comment or PNG text, and upright. Undecodable photos and decompression bombs are a
422 naming the field, with nothing stored; ``awasi photos scrub`` cleans photos
stored before."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image, PngImagePlugin

from awasi.cli import main as awasi_main
from awasi.settings import Settings
from tests.support.botapi import TOKEN, BotApi, Updates, bot_settings, running_bot, running_botapi
from tests.support.images import JPEG
from tests.support.intake import complaint, csrf_of, form_data
from tests.support.services import running_service

# Text that must not survive re-encoding, put in every kind of metadata.
MARKERS = (b"MarkerMake", b"MarkerModel", b"MarkerXMP", b"MarkerComment", b"MarkerText",
           b"MarkerICC", b"MarkerSoftware")
XMP = ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
       '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">MarkerXMP</rdf:RDF>'
       '</x:xmpmeta><?xpacket end="w"?>')
# Wide (40 x 20) with EXIF orientation 6 ("rotate 90 clockwise to view"): stored upright
# it is tall (20 x 40).
WIDE, UPRIGHT = (40, 20), (20, 40)


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "MarkerMake"
    exif[0x0110] = "MarkerModel"
    exif[0x0131] = "MarkerSoftware"
    exif[0x0112] = 6
    # The GPS IFD: 6 deg 12' 30" S, 106 deg 49' 10" E (Jakarta).
    exif[0x8825] = {1: "S", 2: (6.0, 12.0, 30.0), 3: "E", 4: (106.0, 49.0, 10.0)}
    return exif


def _image() -> Image.Image:
    img = Image.new("RGB", WIDE, (200, 30, 30))
    img.paste((30, 30, 200), (0, 0, 20, 20))  # left half blue: orientation is visible
    return img


def dirty_jpeg() -> bytes:
    buf = io.BytesIO()
    _image().save(buf, "JPEG", exif=exif_with_gps().tobytes(), xmp=XMP.encode(),
                  comment=b"MarkerComment", icc_profile=b"MarkerICC" * 20)
    return buf.getvalue()


def dirty_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "MarkerText")
    info.add_text("Author", "MarkerText", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP)
    buf = io.BytesIO()
    _image().save(buf, "PNG", pnginfo=info, exif=exif_with_gps().tobytes())
    return buf.getvalue()


def dirty_webp() -> bytes:
    buf = io.BytesIO()
    _image().save(buf, "WEBP", exif=exif_with_gps().tobytes(), xmp=XMP.encode(),
                  icc_profile=b"MarkerICC" * 20)
    return buf.getvalue()


DIRTY = {"image/jpeg": dirty_jpeg, "image/png": dirty_png, "image/webp": dirty_webp}


def test_the_test_images_do_carry_metadata() -> None:
    """Guard against a vacuous test: what goes in has every kind of metadata."""
    jpeg, png, webp = dirty_jpeg(), dirty_png(), dirty_webp()
    assert b"Exif\x00\x00" in jpeg and b"MarkerXMP" in jpeg and b"MarkerComment" in jpeg
    assert b"MarkerICC" in jpeg and b"MarkerMake" in jpeg
    assert b"tEXt" in png and b"zTXt" in png and b"iTXt" in png and b"eXIf" in png
    assert b"EXIF" in webp and b"XMP " in webp and b"ICCP" in webp
    for data in (jpeg, png, webp):
        with Image.open(io.BytesIO(data)) as img:
            assert img.getexif().get_ifd(0x8825), "the GPS IFD is there"


def assert_clean(data: bytes, content_type: str) -> None:
    """No metadata of any kind in ``data``; it decodes, upright, as ``content_type``."""
    assert b"Exif\x00\x00" not in data
    for marker in MARKERS:
        assert marker not in data, marker
    assert b"xpacket" not in data and b"adobe:ns:meta" not in data
    if content_type == "image/png":
        for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"):
            assert chunk not in data, chunk
    if content_type == "image/webp":
        for chunk in (b"EXIF", b"XMP ", b"ICCP"):
            assert chunk not in data, chunk
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert Image.MIME[str(img.format)] == content_type
        assert not img.getexif(), "no EXIF tag at all"
        assert not {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "Comment",
                    "Author"} & set(img.info)
        assert img.size == UPRIGHT, "the orientation was applied"
        # The blue half of the wide image is on top once upright.
        r, _g, b = img.convert("RGB").getpixel((10, 5))
        assert b > 150 and r < 100


async def stored_photos(settings: Settings, complaint_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch("SELECT content_type, data FROM intake.photos"
                                " WHERE complaint_id = $1 ORDER BY created_at, id",
                                uuid.UUID(complaint_id))
    finally:
        await conn.close()


async def count(settings: Settings, table: str) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM intake.{table}"))
    finally:
        await conn.close()


@pytest.fixture
def intake_settings(settings: Settings) -> Settings:
    return settings.with_(rate_limit_per_minute=10_000)


@pytest.fixture
async def client(intake_settings: Settings) -> AsyncIterator[TestClient]:
    async with running_service("intake", intake_settings) as c:
        yield c


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- every path -------------------------------------------------------------------------

async def test_json_api_stores_photos_without_metadata(client: TestClient,
                                                       intake_settings: Settings) -> None:
    r = await client.post("/api/v1/complaints", json=complaint(photos=[
        {"content_type": ct, "data": b64(make())} for ct, make in DIRTY.items()]))
    body = await r.json()
    assert r.status == 201, body
    rows = await stored_photos(intake_settings, body["complaint_id"])
    assert sorted(r["content_type"] for r in rows) == sorted(DIRTY)
    for row in rows:
        assert_clean(bytes(row["data"]), row["content_type"])


async def test_multipart_api_stores_photos_without_metadata(client: TestClient,
                                                            intake_settings: Settings) -> None:
    form = FormData()
    form.add_field("complaint", json.dumps(complaint()), content_type="application/json")
    for ct, make in DIRTY.items():
        form.add_field("photo", make(), filename="p", content_type=ct)
    r = await client.post("/api/v1/complaints", data=form)
    body = await r.json()
    assert r.status == 201, body
    rows = await stored_photos(intake_settings, body["complaint_id"])
    assert len(rows) == 3
    for row in rows:
        assert_clean(bytes(row["data"]), row["content_type"])


async def test_web_form_and_its_info_form_store_photos_without_metadata(
        client: TestClient, intake_settings: Settings) -> None:
    csrf = csrf_of(await (await client.get("/")).text())
    form = form_data(csrf, privacy="anonymous")
    form.add_field("photos", dirty_jpeg(), filename="a.jpg", content_type="image/jpeg")
    r = await client.post("/", data=form, allow_redirects=False)
    assert r.status == 303, await r.text()
    location = r.headers["Location"]
    html = await (await client.get(location)).text()
    secret = re.search(r'data-testid="secret">([^<]+)<', html)
    assert secret
    info = FormData()
    info.add_field("csrf", csrf_of(html))
    info.add_field("message", "Foto tambahan terlampir.")
    info.add_field("secret", secret.group(1))
    info.add_field("photos", dirty_png(), filename="b.png", content_type="image/png")
    info.add_field("photos", dirty_webp(), filename="c.webp", content_type="image/webp")
    r = await client.post(f"{location}/info", data=info)
    assert r.status == 200, await r.text()
    conn = await asyncpg.connect(intake_settings.database_url)
    try:
        rows = await conn.fetch("SELECT content_type, data FROM intake.photos")
    finally:
        await conn.close()
    assert sorted(r["content_type"] for r in rows) == sorted(DIRTY)
    for row in rows:
        assert_clean(bytes(row["data"]), row["content_type"])


async def test_json_info_path_stores_photos_without_metadata(
        client: TestClient, intake_settings: Settings) -> None:
    r = await client.post("/api/v1/complaints", json=complaint(privacy="anonymous",
                                                               reporter=None))
    body = await r.json()
    r = await client.post(f"/api/v1/complaints/{body['tracking_code']}/info", json={
        "secret": body["secret"], "message": "Fotonya.",
        "photos": [{"content_type": "image/jpeg", "data": b64(dirty_jpeg())}]})
    assert r.status == 200, await r.json()
    (row,) = await stored_photos(intake_settings, body["complaint_id"])
    assert_clean(bytes(row["data"]), "image/jpeg")


@pytest.fixture
async def api() -> AsyncIterator[BotApi]:
    async with running_botapi(TOKEN) as stand_in:
        yield stand_in
        stand_in.assert_clean()


async def test_the_bot_stores_photos_without_metadata(settings: Settings, api: BotApi) -> None:
    user = Updates(4401, language_code="en")
    api.files.update(j=dirty_jpeg(), p=dirty_png(), w=dirty_webp())
    async with running_bot(bot_settings(settings, api), api) as bot:
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:MDN"))
        await bot.say(user, user.button("c:jalan-rusak"))
        await bot.say(user, user.text("A deep hole in the road in front of the school."))
        await bot.say(user, user.button("skip"))
        # The draft's photos are cleaned as they arrive, before they are kept.
        await bot.say(user, user.photo("j", len(api.files["j"])))
        draft = await bot.pool.fetchval("SELECT data FROM intake.telegram_draft_photos")
        assert_clean(bytes(draft), "image/jpeg")
        await bot.say(user, user.photo("p", len(api.files["p"])))
        await bot.say(user, user.photo("w", len(api.files["w"])))
        await bot.say(user, user.button("pv:anonymous"))
        receipt = await bot.say(user, user.button("ok"))
        assert "Tracking code" in receipt.text
        rows = await bot.pool.fetch("SELECT content_type, data FROM intake.photos")
        assert sorted(r["content_type"] for r in rows) == sorted(DIRTY)
        for row in rows:
            assert_clean(bytes(row["data"]), row["content_type"])
        # A file that is no image, sent as a photo: the citizen is told, nothing kept.
        await bot.say(user, user.text("/lapor"))
        await bot.say(user, user.button("r:MDN"))
        await bot.say(user, user.button("c:jalan-rusak"))
        await bot.say(user, user.text("Another hole in the road near the market."))
        await bot.say(user, user.button("skip"))
        api.files["bad"] = JPEG[:40]
        hint = await bot.say(user, user.photo("bad", 40))
        assert "could not be read" in hint.text
        assert await bot.pool.fetchval("SELECT count(*) FROM intake.telegram_draft_photos") == 0


# --- refused ------------------------------------------------------------------------------

def truncated_jpeg() -> bytes:
    return dirty_jpeg()[:200]  # a JPEG's magic and headers, then nothing


def bomb_png() -> bytes:
    """8 KB of PNG that claims 64 million pixels (a 1-bit image, compressed)."""
    buf = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buf, "PNG")
    assert len(buf.getvalue()) < 20_000
    return buf.getvalue()


@pytest.mark.parametrize(("bad", "kind"), [(truncated_jpeg, "photo_unreadable"),
                                           (bomb_png, "photo_too_many_pixels")])
async def test_a_bad_photo_is_a_422_naming_it_and_nothing_is_stored(
        client: TestClient, intake_settings: Settings, bad: Any, kind: str) -> None:
    good = {"content_type": "image/png", "data": b64(dirty_png())}
    r = await client.post("/api/v1/complaints", json=complaint(photos=[
        good, {"content_type": "image/jpeg", "data": b64(bad())}]))
    body = await r.json()
    assert r.status == 422, body
    assert body["error"]["details"]["fields"] == [
        {"field": "photos.1", "message": body["error"]["details"]["fields"][0]["message"],
         "type": kind}]
    form = FormData()
    form.add_field("complaint", json.dumps(complaint()), content_type="application/json")
    form.add_field("photo", bad(), filename="x", content_type="image/jpeg")
    r = await client.post("/api/v1/complaints", data=form)
    body = await r.json()
    assert r.status == 422, body
    assert body["error"]["details"]["fields"][0]["field"] == "photos.0"
    assert body["error"]["details"]["fields"][0]["type"] == kind
    assert await count(intake_settings, "complaints") == 0
    assert await count(intake_settings, "photos") == 0
    assert await count(intake_settings, "outbox") == 0


async def test_one_bad_photo_never_fails_other_citizens_submissions(
        client: TestClient, intake_settings: Settings) -> None:
    """Submissions are group-committed; photos are decoded before the batch, so a bad
    one is refused alone while the others, sent at the same moment, are stored."""
    async def send(i: int) -> int:
        data = truncated_jpeg() if i == 5 else dirty_jpeg()
        r = await client.post("/api/v1/complaints", json=complaint(
            photos=[{"content_type": "image/jpeg", "data": b64(data)}]))
        return r.status

    statuses = await asyncio.gather(*(send(i) for i in range(12)))
    assert statuses[5] == 422
    assert statuses[:5] + statuses[6:] == [201] * 11
    assert await count(intake_settings, "complaints") == 11
    assert await count(intake_settings, "photos") == 11


async def test_the_multipart_complaint_part_gets_the_json_body_checks(
        settings: Settings) -> None:
    async with running_service("intake", settings.with_(
            rate_limit_per_minute=10_000, max_request_bytes=4096)) as c:
        form = FormData()
        form.add_field("complaint", json.dumps(complaint(description="Ada\u0000NUL di sini.")),
                       content_type="application/json")
        r = await c.post("/api/v1/complaints", data=form)
        body = await r.json()
        assert r.status == 422, body
        assert body["error"]["details"]["fields"][0] == {
            "field": "complaint.description", "message": "must not contain NUL characters",
            "type": "string_nul"}
        form = FormData()
        form.add_field("complaint", json.dumps(complaint(description="x" * 5000)),
                       content_type="application/json")
        r = await c.post("/api/v1/complaints", data=form)
        body = await r.json()
        assert r.status == 413, body
        assert body["error"]["code"] == "payload_too_large"
        assert body["error"]["details"] == {"max_bytes": 4096}
        form = FormData()
        form.add_field("complaint", "[1, 2]", content_type="application/json")
        r = await c.post("/api/v1/complaints", data=form)
        assert r.status == 422
        assert (await r.json())["error"]["details"]["fields"][0]["field"] == "complaint"
        assert await count(settings, "complaints") == 0


# --- photos stored before ---------------------------------------------------------------

async def test_scrub_command_cleans_photos_stored_before(
        client: TestClient, intake_settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    r = await client.post("/api/v1/complaints", json=complaint(photos=[
        {"content_type": "image/jpeg", "data": b64(dirty_jpeg())},
        {"content_type": "image/png", "data": b64(dirty_png())}]))
    body = await r.json()
    cid = uuid.UUID(body["complaint_id"])
    conn = await asyncpg.connect(intake_settings.database_url)
    try:
        # As a photo stored before this release was: the bytes as sent, not re-encoded.
        ids = [r["id"] for r in await conn.fetch(
            "SELECT id FROM intake.photos WHERE complaint_id = $1 ORDER BY content_type", cid)]
        await conn.execute("UPDATE intake.photos SET data = $2, reencoded = false"
                           " WHERE id = $1", ids[0], dirty_jpeg())
        await conn.execute("UPDATE intake.photos SET data = $2, reencoded = false"
                           " WHERE id = $1", ids[1], dirty_png())
        await conn.execute("INSERT INTO intake.photos (id, complaint_id, content_type, data,"
                           " reencoded) VALUES ($1, $2, 'image/jpeg', $3, false)",
                           uuid.uuid4(), cid, b"\xff\xd8\xff broken")
        await conn.execute("INSERT INTO intake.telegram_draft_photos (chat_id, draft_id, seq,"
                           " content_type, data, reencoded) VALUES (1, 'd', 0, 'image/webp',"
                           " $1, false)", dirty_webp())
        monkeypatch.setenv("AWASI_DATABASE_URL", intake_settings.database_url)
        assert await asyncio.to_thread(awasi_main, ["photos", "scrub"]) == 1
        out = capsys.readouterr().out
        assert "photos re-encoded without metadata: 3" in out
        assert "could not be read, left as it is: photos:" in out
        rows = await conn.fetch("SELECT content_type, data, reencoded FROM intake.photos"
                                " WHERE id = ANY($1::uuid[])", ids)
        for row in rows:
            assert row["reencoded"]
            assert_clean(bytes(row["data"]), row["content_type"])
        draft = await conn.fetchrow("SELECT data, reencoded FROM intake.telegram_draft_photos")
        assert draft["reencoded"]
        assert_clean(bytes(draft["data"]), "image/webp")
        # Run again: nothing left to do (a photo is never re-encoded twice).
        before = {r["id"]: bytes(r["data"]) for r in await conn.fetch(
            "SELECT id, data FROM intake.photos")}
        assert await asyncio.to_thread(awasi_main, ["photos", "scrub"]) == 1
        assert "photos re-encoded without metadata: 0" in capsys.readouterr().out
        after = {r["id"]: bytes(r["data"]) for r in await conn.fetch(
            "SELECT id, data FROM intake.photos")}
        assert after == before
    finally:
        await conn.close()
