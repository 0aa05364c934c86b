"""Shared pieces of the intake tests: a complaint body, submitting it, the router's
events as intake receives them, reading a complaint's public status."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from awasi.events.envelope import Envelope
from awasi.events.payloads import ComplaintRouted, Deadlines, TicketResolved

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32


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


async def status_of(client: TestClient, code: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/complaints/{code}")
    assert r.status == 200
    return await r.json()  # type: ignore[no-any-return]
