"""Property-based fuzzing of intake's OpenAPI document with schemathesis: whatever
the inputs, no operation answers a server error. The service runs as a real process
against the embedded PostgreSQL and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from awasi.settings import Settings
from awasi.web import keys
from services.intake.app import create_app
from tests.support.services import ServiceProcess
from tests.support.stack import PostgresCluster, start_broker


def _document() -> dict[str, Any]:
    # Building the app does not connect to anything: the document is made as routes are added.
    return create_app(Settings.from_env({}))[keys.OPENAPI].doc  # type: ignore[no-any-return]


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture(scope="module")
async def intake_url(pg: PostgresCluster) -> AsyncIterator[str]:
    name = await pg.create_database()
    broker = start_broker()
    proc = ServiceProcess("intake", pg.dsn(name), broker.bootstrap,
                          extra_env={"AWASI_RATE_LIMIT_PER_MINUTE": "1000000"})
    proc.start()
    try:
        await proc.wait_healthy()
        yield proc.url
    finally:
        proc.stop()
        broker.stop()
        await pg.drop_database(name)


@pytest.mark.slow
@schema.parametrize()
@hsettings(max_examples=40, deadline=None,
           suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                  HealthCheck.function_scoped_fixture])
def test_no_server_errors(case: Any, intake_url: str) -> None:
    case.call_and_validate(base_url=intake_url,
                          checks=[not_a_server_error, response_schema_conformance])
