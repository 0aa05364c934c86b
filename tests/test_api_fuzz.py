"""Property-based fuzzing (schemathesis) of the router's and oversight's OpenAPI
documents, with a staff token on the desk API and a panel token on the panel API:
whatever the input, no server error, and every response matches the document.
The services run as real processes against the embedded PostgreSQL and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from awasi.db import create_pool
from awasi.identity import add_user
from awasi.settings import Settings
from awasi.web import keys
from services.oversight.app import create_app as create_oversight
from services.router.app import create_app as create_router
from tests.support.services import ServiceProcess
from tests.support.stack import PostgresCluster, start_broker

pytestmark = pytest.mark.slow

PASSWORD = "fuzz-password-2026"


def _doc(factory: Any) -> dict[str, Any]:
    # Building an app connects to nothing: the document is made as routes are added.
    return factory(Settings.from_env({}))[keys.OPENAPI].doc  # type: ignore[no-any-return]


router_schema = schemathesis.openapi.from_dict(_doc(create_router))
oversight_schema = schemathesis.openapi.from_dict(_doc(create_oversight))

HYPOTHESIS = hsettings(
    max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)


@dataclass
class Target:
    url: str
    token: str


async def _login(url: str, username: str) -> str:
    async with aiohttp.ClientSession() as s, s.post(
        f"{url}/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    ) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["token"])


@pytest.fixture(scope="module")
async def services(pg: PostgresCluster) -> AsyncIterator[dict[str, Target]]:
    name = await pg.create_database()
    broker = start_broker()
    pool = await create_pool(pg.dsn(name), min_size=1, max_size=2)
    try:
        await add_user(pool, username="fuzz.staff", password=PASSWORD, role="staff",
                       agency="MDN-INSPEKTORAT")
        await add_user(pool, username="fuzz.panel", password=PASSWORD, role="panel")
    finally:
        await pool.close()
    # Logins are throttled per address; the fuzzer tries many wrong ones on purpose.
    env = {"AWASI_LOGIN_RATE_LIMIT_PER_MINUTE": "1000000"}
    procs = {n: ServiceProcess(n, pg.dsn(name), broker.bootstrap, extra_env=env)
             for n in ("router", "oversight")}
    for p in procs.values():
        p.start()
    try:
        for p in procs.values():
            await p.wait_healthy()
        yield {
            "router": Target(procs["router"].url, await _login(procs["router"].url,
                                                                "fuzz.staff")),
            "oversight": Target(procs["oversight"].url,
                                await _login(procs["oversight"].url, "fuzz.panel")),
        }
    finally:
        for p in procs.values():
            p.stop()
        broker.stop()
        await pg.drop_database(name)


CHECKS = [not_a_server_error, response_schema_conformance]


@router_schema.parametrize()
@HYPOTHESIS
def test_router_api(case: Any, services: dict[str, Target]) -> None:
    target = services["router"]
    case.call_and_validate(base_url=target.url, checks=CHECKS,
                           headers={"Authorization": f"Bearer {target.token}"})


@oversight_schema.parametrize()
@HYPOTHESIS
def test_oversight_api(case: Any, services: dict[str, Target]) -> None:
    target = services["oversight"]
    case.call_and_validate(base_url=target.url, checks=CHECKS,
                           headers={"Authorization": f"Bearer {target.token}"})
