"""The three services start through their own app factories and answer the
operational endpoints."""

from __future__ import annotations

import pytest

from awasi.settings import Settings
from tests.support.services import running_service


@pytest.mark.parametrize("name", ["intake", "router", "oversight"])
async def test_service_answers_health_ready_metrics_openapi(name: str, settings: Settings) -> None:
    async with running_service(name, settings) as client:
        r = await client.get("/healthz")
        assert r.status == 200
        assert (await r.json())["service"] == name
        r = await client.get("/readyz")
        body = await r.json()
        assert r.status == 200, body
        assert body["checks"] == {"database": "ok", "broker": "ok"}
        r = await client.get("/metrics")
        assert r.status == 200
        assert "awasi_http_requests_total" in await r.text()
        r = await client.get("/openapi.json")
        doc = await r.json()
        assert doc["openapi"].startswith("3.")
        assert "/healthz" in doc["paths"]
        r = await client.get("/no-such-page", headers={"Accept": "application/json"})
        assert r.status == 404
        body = await r.json()
        assert body["error"]["code"] == "not_found"
        assert set(body["error"]) == {"code", "message", "details"}


async def test_json_bodies_with_nul_characters_are_refused_naming_the_field(
        settings: Settings) -> None:
    # PostgreSQL text cannot hold NUL: the web kit refuses it before any handler runs.
    async with running_service("router", settings) as client:
        r = await client.post("/api/v1/auth/login",
                              json={"username": "a\x00b", "password": "whatever-123"})
        assert r.status == 422
        body = await r.json()
        assert body["error"]["details"]["fields"][0]["field"] == "username"


async def test_form_bodies_with_nul_characters_are_refused_naming_the_field(
        settings: Settings) -> None:
    # The same for forms (here Open311's, which speaks the spec's error format).
    async with running_service("intake", settings) as client:
        r = await client.post("/open311/v2/requests.json", data={
            "service_code": "sampah", "jurisdiction_id": "MDN", "lat": "3.5", "long": "98.6",
            "description": "Sampah menumpuk \x00 di jalan sejak lama sekali."})
        assert r.status == 400
        assert "description" in (await r.json())[0]["description"]
