"""The citizen's pages without JavaScript: the form in Bahasa Indonesia (English by
choice), CSRF, validation errors next to the field with nothing lost, the status
page, the lookup, the rating and information forms; and complete Indonesian
message catalogs."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from awasi.events import topics
from awasi.i18n import Catalogs
from awasi.settings import Settings
from services.intake import pages
from tests.support.intake import csrf_of, form_data, real_jpeg, resolved_env, routed_env
from tests.support.kafka import publish, read_topic
from tests.support.wait import eventually

INTAKE = Path(pages.__file__).resolve().parent


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    from tests.support.services import running_service

    async with running_service("intake", settings.with_(rate_limit_per_minute=10_000)) as c:
        yield c


async def test_form_is_indonesian_by_default_and_english_by_choice(client: TestClient) -> None:
    r = await client.get("/")
    html = await r.text()
    assert r.status == 200
    assert '<html lang="id">' in html
    assert "Laporkan masalah layanan publik" in html
    assert '<label for="description">' in html  # labels tied to fields
    r = await client.get("/?lang=en")
    html = await r.text()
    assert '<html lang="en">' in html
    assert "Report a problem with a public service" in html
    assert r.cookies["awasi_lang"].value == "en"
    r = await client.get("/")  # the cookie remembers the choice
    assert "Report a problem with a public service" in await r.text()


async def test_form_without_csrf_is_refused(client: TestClient) -> None:
    await client.get("/")
    r = await client.post("/", data=form_data("forged"))
    assert r.status == 403
    client.session.cookie_jar.clear()
    r = await client.post("/", data=form_data("x"))
    assert r.status == 403


async def test_validation_error_keeps_everything_typed(client: TestClient) -> None:
    csrf = csrf_of(await (await client.get("/")).text())
    r = await client.post("/", data=form_data(csrf, description="pendek",
                                              email="bukan-email"))
    html = await r.text()
    assert r.status == 422
    assert 'id="description-error"' in html
    assert "10 sampai 4.000 karakter" in html
    assert 'id="email-error"' in html
    assert 'aria-describedby="description-error"' in html
    # Nothing typed is lost.
    assert ">pendek</textarea>" in html
    assert 'value="Jl. Gatot Subroto"' in html
    assert 'value="Budi Santoso"' in html
    assert 'value="bukan-email"' in html
    assert 'value="jalan-rusak" selected' in html
    assert 'value="confidential" checked' in html


async def test_submit_lands_on_status_page_with_code_and_secret(
        client: TestClient, settings: Settings) -> None:
    csrf = csrf_of(await (await client.get("/")).text())
    r = await client.post("/", data=form_data(csrf), allow_redirects=False)
    assert r.status == 303
    location = r.headers["Location"]
    assert re.fullmatch(r"/status/MDN-[0-9A-Z]{4}-[0-9A-Z]{4}", location)
    code = location.rsplit("/", 1)[1]
    r = await client.get(location)
    html = await r.text()
    assert code in html
    secret = re.search(r'data-testid="secret">([^<]+)<', html)
    assert secret
    assert "Diterima" in html
    # The lookup form finds it, with any spelling.
    r = await client.get(f"/status?code={code.lower()}", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == location
    r = await client.get("/status?code=MDN-XXXX-XXXX")
    assert r.status == 404
    assert 'id="code-error"' in await r.text()

    # The agency resolves; the page shows the rating form; the rating goes through.
    cid = (await (await client.get(f"/api/v1/complaints/{code}")).json())["tracking_code"]
    assert cid == code
    bootstrap = settings.kafka_bootstrap or ""
    complaint_id = await _complaint_id(settings, code)
    await publish(bootstrap, topics.ROUTER, routed_env(complaint_id, code).to_bytes(),
                  key=complaint_id.encode())
    await publish(bootstrap, topics.ROUTER, resolved_env(complaint_id).to_bytes(),
                  key=complaint_id.encode())

    async def has_form() -> str | None:
        html = await (await client.get(location)).text()
        return html if 'action="/status/' + code + '/feedback"' in html else None

    html = await eventually(has_form)
    assert "Inspektorat" in html and "MDN-INSPEKTORAT" in html
    form = FormData()
    form.add_field("csrf", csrf_of(html))
    form.add_field("rating", "4")
    form.add_field("secret", "WRONG-WRONG")
    r = await client.post(f"/status/{code}/feedback", data=form)
    assert r.status == 403
    html = await r.text()
    assert "Kode rahasia tindak lanjut salah." in html
    assert 'value="4" checked' in html
    form = FormData()
    form.add_field("csrf", csrf_of(html))
    form.add_field("rating", "4")
    form.add_field("secret", secret.group(1))
    r = await client.post(f"/status/{code}/feedback", data=form, allow_redirects=False)
    assert r.status == 303
    status = await (await client.get(f"/api/v1/complaints/{code}", headers={
        "X-Awasi-Secret": secret.group(1)})).json()
    assert status["feedback"]["rating"] == 4


async def _complaint_id(settings: Settings, code: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        return str(await conn.fetchval(
            "SELECT id FROM intake.complaints WHERE tracking_code = $1", code))
    finally:
        await conn.close()


async def test_info_form_with_photo(client: TestClient, settings: Settings) -> None:
    csrf = csrf_of(await (await client.get("/")).text())
    form = form_data(csrf, privacy="anonymous")
    form.add_field("photos", real_jpeg("blue"), filename="a.jpg", content_type="image/jpeg")
    r = await client.post("/", data=form, allow_redirects=False)
    assert r.status == 303, await r.text()
    location = r.headers["Location"]
    html = await (await client.get(location)).text()
    secret = re.search(r'data-testid="secret">([^<]+)<', html)
    assert secret
    assert 'id="info-secret" name="secret" value="' + secret.group(1) in html  # pre-filled
    code = location.rsplit("/", 1)[1]
    cid = await _complaint_id(settings, code)

    # A file that is no image: refused, the message kept, nothing stored.
    form = FormData()
    form.add_field("csrf", csrf_of(html))
    form.add_field("message", "Fotonya terlampir.")
    form.add_field("secret", secret.group(1))
    form.add_field("photos", b"not an image", filename="x.png", content_type="image/png")
    r = await client.post(f"{location}/info", data=form)
    assert r.status == 422
    assert "Fotonya terlampir." in await r.text()
    assert len(await _photos(settings, cid)) == 1  # only the submission's

    # A valid photo with the information: stored with the complaint, named in the event.
    form = FormData()
    form.add_field("csrf", csrf_of(html))
    form.add_field("message", "Fotonya terlampir.")
    form.add_field("secret", secret.group(1))
    form.add_field("photos", real_jpeg("green"), filename="b.jpg", content_type="image/jpeg")
    r = await client.post(f"{location}/info", data=form)
    html = await r.text()
    assert r.status == 200, html
    assert "Anda menambahkan informasi" in html
    photos = await _photos(settings, cid)
    assert len(photos) == 2
    added = photos[-1]
    assert added["content_type"] == "image/jpeg"
    from PIL import Image

    with Image.open(io.BytesIO(added["data"])) as img:  # a decodable image
        assert img.size == (24, 24)
    info = await read_topic(settings.kafka_bootstrap or "", topics.INTAKE,
                            until=lambda ms: any(m["type"] == "complaint.info_added"
                                                 for m in ms))
    event = next(m for m in info if m["type"] == "complaint.info_added")
    assert event["payload"]["photo_ids"] == [str(added["id"])]


async def _photos(settings: Settings, cid: str) -> list[dict[str, object]]:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch("SELECT id, content_type, data FROM intake.photos"
                                " WHERE complaint_id = $1::uuid ORDER BY created_at, id", cid)
        return [dict(r) for r in rows]
    finally:
        await conn.close()


def _msgids() -> set[str]:
    ids: set[str] = set()
    for p in (INTAKE / "templates").glob("*.html"):
        ids |= {m.group(2) for m in re.finditer(r"""_\(\s*(["'])(.*?)\1""", p.read_text())}
    for table in (pages.FIELD_MESSAGES, pages.STATUS_LABELS, pages.TIMELINE_LABELS,
                  pages.DEADLINE_LABELS, pages.PUBLIC_TIMELINE_LABELS):
        ids |= set(table.values())
    for module in ("pages.py", "reports.py", "participation_web.py"):
        src = (INTAKE / module).read_text()
        for m in re.finditer(r'gettext\(\s*"([^"]*)"(?:\s*"([^"]*)")?', src):
            ids.add(m.group(1) + (m.group(2) or ""))
    return ids


def test_indonesian_catalog_is_complete() -> None:
    ids = _msgids()
    assert len(ids) > 80
    catalogs = Catalogs(INTAKE / "locale")
    assert catalogs.missing("id", iter(sorted(ids))) == []
    assert (INTAKE / "locale" / "en.po").exists()


async def test_form_rate_limit_keeps_the_form(settings: Settings) -> None:
    from tests.support.services import running_service

    async with running_service("intake", settings.with_(rate_limit_per_minute=1)) as c:
        csrf = csrf_of(await (await c.get("/")).text())
        r = await c.post("/", data=form_data(csrf), allow_redirects=False)
        assert r.status == 303
        r = await c.post("/", data=form_data(csrf, title="Kedua kalinya"))
        html = await r.text()
        assert r.status == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert "Terlalu banyak laporan" in html
        assert 'value="Kedua kalinya"' in html


async def test_pages_send_protective_headers_and_count_submissions(client: TestClient) -> None:
    r = await client.get("/")
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    csrf = csrf_of(await r.text())
    r = await client.post("/", data=form_data(csrf), allow_redirects=False)
    assert r.status == 303
    metrics = await (await client.get("/metrics")).text()
    assert 'awasi_intake_complaints_total{channel="web"} 1.0' in metrics


async def test_double_submit_files_one_complaint(client: TestClient, settings: Settings) -> None:
    html = await (await client.get("/")).text()
    csrf = csrf_of(html)
    submission = re.search(r'name="submission" value="([^"]+)"', html)
    assert submission
    r1 = await client.post("/", data=form_data(csrf, submission=submission.group(1)),
                           allow_redirects=False)
    r2 = await client.post("/", data=form_data(csrf, submission=submission.group(1)),
                           allow_redirects=False)
    assert r1.status == r2.status == 303
    assert r1.headers["Location"] == r2.headers["Location"]
    r3 = await client.post("/", data=form_data(csrf, submission=submission.group(1),
                                               title="Lain"))
    assert r3.status == 409
    assert "Formulir ini sudah dikirim" in await r3.text()
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM intake.complaints") == 1
    finally:
        await conn.close()


async def test_withdraw_from_the_status_page(client: TestClient) -> None:
    csrf = csrf_of(await (await client.get("/")).text())
    r = await client.post("/", data=form_data(csrf), allow_redirects=False)
    location = r.headers["Location"]
    html = await (await client.get(location)).text()
    assert 'action="' + location + '/withdraw"' in html
    form = FormData()
    form.add_field("csrf", csrf_of(html))
    form.add_field("reason", "Sudah diperbaiki sendiri")
    form.add_field("secret", "NOPE-NOPE")
    r = await client.post(f"{location}/withdraw", data=form)
    html = await r.text()
    assert r.status == 403
    assert 'id="withdraw-secret-error"' in html
    assert 'value="Sudah diperbaiki sendiri"' in html
    secret = re.search(r'data-testid="secret">([^<]+)<', html)
    assert secret
    form = FormData()
    form.add_field("csrf", csrf_of(html))
    form.add_field("secret", secret.group(1))
    r = await client.post(f"{location}/withdraw", data=form)
    html = await r.text()
    assert 'data-status="withdrawn"' in html and "Dicabut" in html
    assert "/withdraw" not in html and 'action="' + location + '/info"' not in html
