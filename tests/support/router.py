"""Shared pieces of the router and desk tests: a small catalog with
every rule kind and three time zones, complaint events as intake sends them, users,
and polling the API until something shows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from awasi.catalog import Catalog, parse_catalog
from awasi.db import create_pool
from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.payloads import ComplaintSubmitted, Payload
from awasi.identity import add_user
from awasi.settings import Settings
from tests.support.kafka import publish
from tests.support.wait import eventually

CATALOG_YAML = """\
version: 1
categories:
  - {code: asn-pungli, name_id: Pungutan liar, name_en: Illegal fees, group: asn,
     resolution_class: investigation}
  - {code: jalan-rusak, name_id: Jalan rusak, name_en: Damaged road, group: service,
     resolution_class: no_investigation}
  - {code: sampah, name_id: Sampah, name_en: Waste, group: service, resolution_class: light}
  - {code: lainnya, name_id: Lainnya, name_en: Other, group: service,
     resolution_class: normative}
regions:
  - code: MDN
    name: Kota Medan
    timezone: Asia/Jakarta
    days_off: [2026-12-24]
    annual_days_off: ["07-01"]
  - code: SRG
    name: Kota Sorong
    timezone: Asia/Jayapura
  - code: MKS
    name: Kota Makassar
    timezone: Asia/Makassar
agencies:
  - {code: MDN-INSPEKTORAT, region: MDN, name: Inspektorat Kota Medan, short_name: Inspektorat,
     roles: [inspectorate]}
  - {code: MDN-PUPR, region: MDN, name: Dinas PUPR Kota Medan, short_name: PUPR}
  - {code: MDN-DLH, region: MDN, name: Dinas Lingkungan Hidup Kota Medan, short_name: DLH}
  - {code: SRG-PUPR, region: SRG, name: Dinas PUPR Kota Sorong, short_name: PUPR}
  - {code: SRG-INSPEKTORAT, region: SRG, name: Inspektorat Kota Sorong, short_name: Inspektorat}
  - {code: MKS-PUPR, region: MKS, name: Dinas PUPR Kota Makassar, short_name: PUPR}
rules:
  - {region: MDN, agency: MDN-INSPEKTORAT, categories: [asn-pungli]}
  - {region: MDN, agency: MDN-PUPR, categories: [jalan-rusak]}
  - {region: MDN, agency: MDN-DLH, keywords: [sampah, bau busuk]}
  - {region: SRG, agency: SRG-PUPR, categories: [jalan-rusak]}
  - {region: MKS, agency: MKS-PUPR, categories: [jalan-rusak]}
"""

PASSWORD = "correct-horse-battery"


def test_catalog() -> Catalog:
    return parse_catalog(CATALOG_YAML, "test-catalog.yaml")


test_catalog.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
def router_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings with the test catalog; intake pointed at a closed port (unreachable)."""
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_YAML)
    return settings.with_(catalog=str(path), intake_url="http://127.0.0.1:9")


USERS: list[tuple[str, str, str | None, str | None]] = [
    # username, role, agency, region
    ("mdn.inspektorat", "staff", "MDN-INSPEKTORAT", None),
    ("mdn.inspektorat.head", "head", "MDN-INSPEKTORAT", None),
    ("mdn.pupr", "staff", "MDN-PUPR", None),
    ("mdn.dlh", "staff", "MDN-DLH", None),
    ("srg.pupr", "staff", "SRG-PUPR", None),
    ("srg.inspektorat", "staff", "SRG-INSPEKTORAT", None),
    ("triage.mdn", "triage", None, "MDN"),
    ("triage.srg", "triage", None, "SRG"),
    ("panel.demo", "panel", None, None),
    ("admin.demo", "admin", None, None),
]


async def create_users(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        for username, role, agency, region in USERS:
            await add_user(pool, username=username, password=PASSWORD, role=role,
                           agency=agency, region=region)
    finally:
        await pool.close()


async def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    r = await client.post("/api/v1/auth/login",
                          json={"username": username, "password": password})
    body = await r.json()
    assert r.status == 200, body
    # Each test says which credentials it sends: keep no cookie from this login.
    client.session.cookie_jar.clear()
    return str(body["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def submitted(region: str, category: str, description: str, *,
              privacy: str = "named", title: str | None = None,
              submitted_at: datetime | None = None, photo_ids: tuple[str, ...] = (),
              complaint_id: str | None = None) -> Envelope:
    complaint_id = complaint_id or str(uuid.uuid4())
    code = "AWS-" + uuid.uuid4().hex[:8].upper()
    payload = ComplaintSubmitted(
        tracking_code=code, region=region, category=category, title=title,
        description=description, privacy=privacy,  # type: ignore[arg-type]
        reporter_ref="r-" + uuid.uuid4().hex[:12], channel="api", photo_ids=photo_ids,
        submitted_at=submitted_at or datetime.now(UTC),
    )
    return Envelope.build(payload, complaint_id=complaint_id, producer="intake")


def event(payload: Payload, complaint_id: str, producer: str) -> Envelope:
    return Envelope.build(payload, complaint_id=complaint_id, producer=producer)


async def send(bootstrap: str, envelope: Envelope) -> None:
    topic = {"intake": topics.INTAKE, "oversight": topics.OVERSIGHT}[envelope.producer]
    await publish(bootstrap, topic, envelope.to_bytes(), key=envelope.complaint_id.encode())


async def ticket_by_code(client: TestClient, token: str, tracking_code: str,
                         path: str = "/api/v1/tickets") -> dict[str, Any] | None:
    r = await client.get(path, params={"tracking_code": tracking_code}, headers=bearer(token))
    assert r.status == 200, await r.text()
    tickets = (await r.json())["tickets"]
    return tickets[0] if tickets else None


async def wait_ticket(client: TestClient, token: str, tracking_code: str,
                      path: str = "/api/v1/tickets", **match: Any) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        t = await ticket_by_code(client, token, tracking_code, path)
        if t and all(t.get(k) == v for k, v in match.items()):
            return t
        return None

    return await eventually(probe, what=f"ticket {tracking_code} {match}")


