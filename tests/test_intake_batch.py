"""The group-commit batcher against the real database: one bad row fails only its own
request (the others in its batch are stored, the bad one leaves nothing), and a
tracking-code collision is redrawn, the citizen's receipt and the event carrying
the code that was stored."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest

from awasi.catalog import load_catalog
from awasi.db import create_pool
from awasi.settings import Settings
from services.intake import domain
from services.intake.batch import SubmitBatcher


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    # (The test database is cloned from a migrated template.)
    p = await create_pool(settings.require_database(), min_size=1, max_size=4)
    try:
        yield p
    finally:
        await p.close()


@contextlib.asynccontextmanager
async def batcher(pool: asyncpg.Pool, max_batch: int = 128) -> AsyncIterator[SubmitBatcher]:
    b = SubmitBatcher(pool, max_batch=max_batch, workers=1)
    task = asyncio.ensure_future(b.run())
    try:
        yield b
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def prepared(settings: Settings, n: int) -> domain.Prepared:
    catalog = load_catalog(settings.catalog)
    return domain.prepare(catalog, settings, domain.SubmitCommand(
        region="MDN", category="jalan-rusak", privacy="anonymous",
        description=f"Jalan berlubang nomor {n} di depan pasar."))


async def stored(pool: asyncpg.Pool, p: domain.Prepared) -> tuple[str | None, int]:
    """(the stored tracking code, the number of its outbox events)."""
    code = await pool.fetchval("SELECT tracking_code FROM intake.complaints WHERE id = $1",
                               p.complaint_id)
    events = await pool.fetchval("SELECT count(*) FROM intake.outbox WHERE key = $1",
                                 str(p.complaint_id))
    return code, int(events)


async def test_one_bad_row_fails_only_its_own_request(settings: Settings,
                                                      pool: asyncpg.Pool) -> None:
    items = [prepared(settings, n) for n in range(6)]
    # Past validation, a row the database refuses (its privacy CHECK): as a bug or a
    # constraint the code did not foresee would be.
    items[3].cmd = dataclasses.replace(items[3].cmd, privacy="bogus")  # type: ignore[arg-type]
    async with batcher(pool) as b:
        results = await asyncio.gather(*(b.submit(p) for p in items), return_exceptions=True)
    assert isinstance(results[3], asyncpg.CheckViolationError), results
    assert [r for i, r in enumerate(results) if i != 3] == [None] * 5
    for i, p in enumerate(items):
        code, events = await stored(pool, p)
        if i == 3:
            assert (code, events) == (None, 0)  # nothing of it, not even its event
        else:
            assert (code, events) == (p.tracking_code, 1)


@pytest.mark.parametrize("alone", [True, False])
async def test_a_tracking_code_collision_is_redrawn(settings: Settings, pool: asyncpg.Pool,
                                                    alone: bool) -> None:
    first = prepared(settings, 0)
    async with batcher(pool) as b:
        await b.submit(first)
        clash = prepared(settings, 1)
        clash.tracking_code = first.tracking_code  # the one-in-2^40 draw
        others = [] if alone else [prepared(settings, n) for n in range(2, 5)]
        await asyncio.gather(*(b.submit(p) for p in [*others, clash]))
    assert clash.tracking_code != first.tracking_code
    code, events = await stored(pool, clash)
    assert (code, events) == (clash.tracking_code, 1)
    envelope = await pool.fetchval("SELECT envelope FROM intake.outbox WHERE key = $1",
                                   str(clash.complaint_id))
    assert envelope["payload"]["tracking_code"] == clash.tracking_code
    assert clash.receipt().tracking_code == clash.tracking_code
    for p in others:
        assert await stored(pool, p) == (p.tracking_code, 1)
