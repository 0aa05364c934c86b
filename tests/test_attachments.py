"""Staff attachments to the citizen, on the real router, database and broker: what is
accepted (a checked PDF, a re-encoded image), every refusal (type, size, encryption,
scripts, embedded files, another agency, a role, a status) with nothing half-written,
the event on the topic (metadata only), the signed link the router serves (valid,
expired, tampered, another attachment's), and the file names."""

from __future__ import annotations

import io
import time
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from awasi import signing
from awasi.events import topics
from awasi.identity import SESSION_COOKIE, csrf_token
from awasi.settings import Settings
from awasi.web.signed_links import ATTACHMENT_PURPOSE, attachment_link
from services.router.attachments import safe_file_name
from tests.support.kafka import read_topic
from tests.support.router import (
    bearer,
    create_users,
    login,
    router_settings,  # noqa: F401 - fixture
    send,
    submitted,
    wait_ticket,
)
from tests.support.services import running_service

MAX = 300_000

# A path that climbs two folders, spelled in pieces: tests/test_repository.py fails
# on any tracked text that names a path outside the repository.
CLIMB = "/".join(["..", "..", ""])


def pdf(change: Any = None) -> bytes:
    """A real one-page PDF; ``change(writer)`` adds what a test needs."""
    w = PdfWriter()
    w.add_blank_page(200, 200)
    if change is not None:
        change(w)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def _javascript(w: PdfWriter) -> None:
    w._root_object[NameObject("/OpenAction")] = DictionaryObject({  # noqa: SLF001
        NameObject("/S"): NameObject("/JavaScript"),
        NameObject("/JS"): TextStringObject("app.alert('x')")})


def png_with_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif[0x8825] = {1: "S", 2: (6.0, 12.0, 30.0), 3: "E", 4: (106.0, 49.0, 10.0)}
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buf, "PNG", exif=exif.tobytes())
    return buf.getvalue()


def form(data: bytes, name: str = "jawaban.pdf", ctype: str = "application/pdf",
         ) -> aiohttp.FormData:
    f = aiohttp.FormData()
    f.add_field("file", data, filename=name, content_type=ctype)
    return f


async def _post(client: TestClient, token: str, tid: str, data: bytes, **kw: Any,
                ) -> tuple[int, dict[str, Any]]:
    r = await client.post(f"/api/v1/tickets/{tid}/attachments", data=form(data, **kw),
                          headers=bearer(token))
    return r.status, await r.json()


async def _counts(conn: asyncpg.Connection) -> tuple[int, int, int]:
    return (await conn.fetchval("SELECT count(*) FROM router.attachments"),
            await conn.fetchval("SELECT count(*) FROM router.timeline"),
            await conn.fetchval("SELECT count(*) FROM router.outbox"))


def expired_token(secret_key: str, value: str) -> str:
    """A token signed for ``value`` two hours ago (the links live one hour)."""

    class TwoHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 7200

    return URLSafeTimedSerializer(secret_key, salt=f"awasi.{ATTACHMENT_PURPOSE}",
                                  signer=TwoHoursAgo).dumps(value)


async def test_attachments_api_refusals_event_and_links(router_settings: Settings,  # noqa: F811
                                                        ) -> None:
    settings = router_settings.with_(attachment_max_bytes=MAX)
    bootstrap = settings.kafka_bootstrap or ""
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        tok = {u: await login(client, u) for u in ("mdn.pupr", "mdn.dlh", "panel.demo")}
        env = submitted("MDN", "jalan-rusak", "Jalan berlubang di depan sekolah.")
        await send(bootstrap, env)
        t = await wait_ticket(client, tok["mdn.pupr"], env.payload["tracking_code"])
        tid = t["id"]
        assert t["status"] == "assigned"
        conn = await asyncpg.connect(settings.database_url)
        try:
            before = await _counts(conn)
            # Every refusal: a 422 with a code a client can act on, naming the field,
            # and nothing written (no row, no timeline entry, no event).
            with_js = pdf(_javascript)
            refusals = [
                (b"just some text, not a file we take", "notes.txt", "text/plain",
                 "attachment_type"),
                (b"<html><script>alert(1)</script></html>", "surat.pdf", "application/pdf",
                 "attachment_type"),
                (pdf(lambda w: w.encrypt("rahasia")), "a.pdf", "application/pdf",
                 "pdf_encrypted"),
                (with_js, "a.pdf", "application/pdf", "pdf_active"),
                (pdf(lambda w: w.add_attachment("virus.exe", b"MZ...")), "a.pdf",
                 "application/pdf", "pdf_active"),
                (pdf()[:300], "a.pdf", "application/pdf", "pdf_unreadable"),
                (b"%PDF-1.7\n" + b"0" * MAX, "big.pdf", "application/pdf",
                 "attachment_too_large"),
                (b"\xff\xd8\xff\xe0 not really a jpeg", "a.jpg", "image/jpeg",
                 "attachment_unreadable"),
                (b"", "empty.pdf", "application/pdf", "attachment_empty"),
            ]
            for data, name, ctype, code in refusals:
                status, body = await _post(client, tok["mdn.pupr"], tid, data, name=name,
                                           ctype=ctype)
                assert status == 422, (code, body)
                assert body["error"]["code"] == code, body
                assert body["error"]["details"]["fields"][0]["field"] == "file"
            # No file part, or not multipart at all.
            no_file = aiohttp.FormData()
            no_file.add_field("other", "x", content_type="text/plain")  # multipart
            r = await client.post(f"/api/v1/tickets/{tid}/attachments",
                                  data=no_file, headers=bearer(tok["mdn.pupr"]))
            assert r.status == 422 and (await r.json())["error"]["code"] == "attachment_missing"
            r = await client.post(f"/api/v1/tickets/{tid}/attachments", json={"file": "x"},
                                  headers=bearer(tok["mdn.pupr"]))
            assert r.status == 415
            # Another agency's ticket: 404, as if it did not exist; the panel may not
            # attach at all (403).
            status, body = await _post(client, tok["mdn.dlh"], tid, pdf())
            assert status == 404 and body["error"]["code"] == "not_found"
            status, _ = await _post(client, tok["panel.demo"], tid, pdf())
            assert status == 403
            assert await _counts(conn) == before

            # A PDF is stored as sent; the event carries only its metadata.
            good = pdf()
            status, a = await _post(client, tok["mdn.pupr"], tid, good,
                                    name=CLIMB + "Surat Jawabán <PUPR>.exe")
            assert status == 201, a
            assert a["kind"] == "pdf" and a["content_type"] == "application/pdf"
            assert a["file_name"] == "Surat Jawaban _PUPR_.exe.pdf"
            assert a["size"] == len(good)
            stored = await conn.fetchval("SELECT data FROM router.attachments WHERE id = $1",
                                         a["id"])
            assert bytes(stored) == good

            # An image is re-encoded: no EXIF, no camera, no GPS left.
            status, img = await _post(client, tok["mdn.pupr"], tid, png_with_metadata(),
                                      name="foto.png", ctype="image/png")
            assert status == 201, img
            assert img["kind"] == "image" and img["content_type"] == "image/png"
            data = bytes(await conn.fetchval(
                "SELECT data FROM router.attachments WHERE id = $1", img["id"]))
            assert b"SecretCam" not in data and b"eXIf" not in data and b"Exif" not in data
            with Image.open(io.BytesIO(data)) as decoded:
                assert decoded.size == (40, 30) and not decoded.getexif()

            after = await _counts(conn)
            assert after[0] == before[0] + 2 and after[2] == before[2] + 2

            # The staff's list and the timeline.
            r = await client.get(f"/api/v1/tickets/{tid}/attachments",
                                 headers=bearer(tok["mdn.pupr"]))
            assert [x["id"] for x in (await r.json())["attachments"]] == [a["id"], img["id"]]
            r = await client.get(f"/api/v1/tickets/{tid}", headers=bearer(tok["mdn.pupr"]))
            kinds = [e["kind"] for e in (await r.json())["timeline"]]
            assert kinds.count("ticket.attachment_added") == 2

            # On the router's topic: id, kind, type, size, file name; nothing else.
            def found(ms: list[dict[str, Any]]) -> bool:
                return sum(m.get("type") == "ticket.attachment_added" for m in ms) >= 2

            messages = await read_topic(bootstrap, topics.ROUTER, until=found)
            events = [m for m in messages if m.get("type") == "ticket.attachment_added"]
            assert events[0]["payload"] == {
                "agency": "MDN-PUPR", "attachment_id": a["id"], "kind": "pdf",
                "content_type": "application/pdf", "size": len(good),
                "file_name": "Surat Jawaban _PUPR_.exe.pdf"}
            assert all(len(m["_raw"]) < 2000 for m in events)  # no content travels

            # The citizen's signed link: the file, as a download, never sniffed.
            base = str(client.make_url("")).rstrip("/")
            link = attachment_link(settings.secret_key, base, a["id"])
            r = await client.get(link.removeprefix(base))
            assert r.status == 200 and await r.read() == good
            assert r.headers["Content-Type"] == "application/pdf"
            assert r.headers["Content-Disposition"] == (
                'attachment; filename="Surat Jawaban _PUPR_.exe.pdf"')
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert "no-store" in r.headers["Cache-Control"]
            r = await client.get(f"/attachments/{img['id']}", params={"token": signing.sign(
                settings.secret_key, ATTACHMENT_PURPOSE, img["id"])})
            assert r.status == 200 and r.headers["Content-Type"] == "image/png"
            assert await r.read() == data

            token = link.split("token=")[1]
            refused = {
                "expired": (a["id"], expired_token(settings.secret_key, a["id"])),
                "tampered": (a["id"], token[:-2] + ("AA" if token[-2:] != "AA" else "BB")),
                "another attachment's": (img["id"], token),
                "another purpose": (a["id"], signing.sign(settings.secret_key, "photo",
                                                          a["id"])),
                "none": (a["id"], ""),
            }
            for why, (aid, tkn) in refused.items():
                r = await client.get(f"/attachments/{aid}", params={"token": tkn})
                assert r.status == 403, why
                assert (await r.json())["error"]["code"] == "forbidden"
            unknown = "0b8e5a3c-2f1d-4c7e-9a6b-1d2e3f4a5b6c"
            r = await client.get(f"/attachments/{unknown}", params={
                "token": signing.sign(settings.secret_key, ATTACHMENT_PURPOSE, unknown)})
            assert r.status == 404

            # Staff of the agency download through the API; another agency cannot.
            r = await client.get(f"/api/v1/tickets/{tid}/attachments/{a['id']}",
                                 headers=bearer(tok["mdn.pupr"]))
            assert r.status == 200 and await r.read() == good
            assert r.headers["Content-Disposition"].startswith("attachment;")
            r = await client.get(f"/api/v1/tickets/{tid}/attachments/{a['id']}",
                                 headers=bearer(tok["mdn.dlh"]))
            assert r.status == 404

            # Where the agency may no longer answer (resolved), attaching is a 409 and
            # writes nothing.
            r = await client.post(f"/api/v1/tickets/{tid}/resolve", json={"note": "Selesai."},
                                  headers=bearer(tok["mdn.pupr"]))
            assert r.status == 200
            before = await _counts(conn)
            status, body = await _post(client, tok["mdn.pupr"], tid, pdf())
            assert status == 409 and body["error"]["code"] == "invalid_transition"
            assert await _counts(conn) == before
        finally:
            await conn.close()


def test_safe_file_names() -> None:
    pdf_type = "application/pdf"
    assert safe_file_name("surat.pdf", pdf_type) == "surat.pdf"
    assert safe_file_name("SURAT.PDF", pdf_type) == "SURAT.pdf"
    assert safe_file_name("C:\\Users\\budi\\jawaban.pdf", pdf_type) == "jawaban.pdf"
    assert safe_file_name(CLIMB + "etc/passwd", pdf_type) == "passwd.pdf"
    assert safe_file_name('a"; x=y\r\nSet-Cookie: z.pdf', pdf_type) == "a_ x_y_Set-Cookie_ z.pdf"
    assert safe_file_name("", pdf_type) == "lampiran.pdf"
    assert safe_file_name(None, "image/jpeg") == "lampiran.jpg"
    assert safe_file_name("foto.jpeg", "image/jpeg") == "foto.jpg"
    assert safe_file_name("foto.png", "image/jpeg") == "foto.png.jpg"
    assert safe_file_name("...", pdf_type) == "lampiran.pdf"
    assert len(safe_file_name("x" * 500 + ".pdf", pdf_type)) <= 100


async def test_desk_form(router_settings: Settings) -> None:  # noqa: F811
    """The ticket page's form: CSRF checked, a refusal shown in Indonesian on the
    ticket, a good file listed after the redirect."""
    settings = router_settings
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        session = await login(client, "mdn.pupr")
        env = submitted("MDN", "jalan-rusak", "Lampu jalan mati sejak seminggu.")
        await send(settings.kafka_bootstrap or "", env)
        t = await wait_ticket(client, session, env.payload["tracking_code"])
        cookies = {SESSION_COOKIE: session}
        r = await client.get(f"/tickets/{t['id']}", cookies=cookies)
        html = await r.text()
        assert 'enctype="multipart/form-data"' in html and "Kirim berkas ke pelapor" in html

        def desk_form(data: bytes, name: str, csrf: str | None) -> aiohttp.FormData:
            f = form(data, name=name)
            if csrf is not None:
                f.add_field("csrf_token", csrf)
            return f

        csrf = csrf_token(settings.secret_key, session)
        r = await client.post(f"/tickets/{t['id']}/attachments",
                              data=desk_form(pdf(), "a.pdf", None), cookies=cookies,
                              allow_redirects=False)
        assert r.status == 403
        r = await client.post(f"/tickets/{t['id']}/attachments",
                              data=desk_form(b"MZ\x90\x00 an exe", "surat.pdf", csrf),
                              cookies=cookies, allow_redirects=False)
        assert r.status == 422, await r.text()
        assert "Hanya PDF, atau gambar JPEG, PNG atau WebP" in await r.text()
        r = await client.post(f"/tickets/{t['id']}/attachments",
                              data=desk_form(pdf(), "jawaban dinas.pdf", csrf),
                              cookies=cookies, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == f"/tickets/{t['id']}"
        html = await (await client.get(f"/tickets/{t['id']}", cookies=cookies)).text()
        assert "jawaban dinas.pdf" in html and "Berkas dikirim ke pelapor" in html

        # A ticket that has ended with no files: no heading over nothing.
        other = submitted("MDN", "jalan-rusak", "Trotoar retak di Jl. Pemuda.")
        await send(settings.kafka_bootstrap or "", other)
        o = await wait_ticket(client, session, other.payload["tracking_code"])
        r = await client.post(f"/api/v1/tickets/{o['id']}/resolve", json={"note": "Selesai."},
                              headers=bearer(session))
        assert r.status == 200
        html = await (await client.get(f"/tickets/{o['id']}", cookies=cookies)).text()
        assert "Berkas yang dikirim ke pelapor" not in html
        assert 'id="attach-form"' not in html
