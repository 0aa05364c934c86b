"""Shared pieces of the intake tests: a complaint body, submitting it, the router's
events as intake receives them, reading a complaint's public status, the web form's
CSRF field and a filled-in form."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from awasi.events.envelope import Envelope
from awasi.events.payloads import ComplaintRouted, Deadlines, TicketResolved
from tests.support.images import JPEG, PNG, WEBP  # noqa: F401 - real images, re-exported


def real_jpeg(color: str = "red", size: int = 24) -> bytes:
    """A small, valid JPEG (Pillow): survives any re-encoding intake may do."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, "JPEG")
    return buf.getvalue()


def complaint(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "region": "MDN", "category": "asn-pungli",
        "title": "Pungutan liar di kantor kelurahan",
        "description": "Petugas meminta uang Rp50.000 untuk surat pengantar.",
        "location": {"lat": 3.59, "lon": 98.67, "address": "Jl. Merdeka 1, Medan"},
        "reporter": {"name": "Siti Rahmawati", "phone": "+62 812 5550 1234",
                     "email": "siti.rahma@example.id"},
        "privacy": "named",
    }
    body.update(over)
    return body


async def submit(client: TestClient, status: int = 201, **over: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/complaints", json=complaint(**over))
    body = await r.json()
    assert r.status == status, body
    return body  # type: ignore[no-any-return]


def routed_env(complaint_id: str, code: str, agency: str = "MDN-INSPEKTORAT") -> Envelope:
    now = datetime.now(UTC)
    return Envelope.build(ComplaintRouted(
        tracking_code=code, region="MDN", category="asn-pungli", agency=agency,
        rule="category:MDN:asn-pungli",
        deadlines=Deadlines(acknowledge_by=now + timedelta(days=7),
                            resolve_by=now + timedelta(days=14))),
        complaint_id=complaint_id, producer="router")


def resolved_env(complaint_id: str, dispute_until: datetime | None = None) -> Envelope:
    until = dispute_until or datetime.now(UTC) + timedelta(days=14)
    return Envelope.build(TicketResolved(
        agency="MDN-INSPEKTORAT", note="Petugas telah diberi sanksi.",
        deadlines=Deadlines(dispute_until=until)),
        complaint_id=complaint_id, producer="router")


async def status_of(client: TestClient, code: str, secret: str | None = None) -> dict[str, Any]:
    """The status; with ``secret`` (sent as X-Awasi-Secret) the conversation too."""
    r = await client.get(f"/api/v1/complaints/{code}",
                         headers={"X-Awasi-Secret": secret} if secret else {})
    assert r.status == 200
    return await r.json()  # type: ignore[no-any-return]


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field"
    return m.group(1)


def form_data(csrf: str, **over: str) -> FormData:
    values = {"csrf": csrf, "region": "MDN", "category": "jalan-rusak",
              "title": "Jalan berlubang", "description": "Lubang besar di depan sekolah dasar.",
              "address": "Jl. Gatot Subroto", "privacy": "confidential", "name": "Budi Santoso",
              "phone": "+62 811 222 3333", "email": "budi@example.id"}
    values.update(over)
    form = FormData()
    for k, v in values.items():
        form.add_field(k, v)
    return form
