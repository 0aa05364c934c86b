"""Group commit: concurrent submissions share one transaction.

Each submission still gets its answer only after the commit that holds its row and
its outbox event (``submit`` awaits a future the worker resolves after COMMIT). A
batch that fails as a whole (a rare tracking-code collision, a constraint) is
retried one submission at a time, so one bad row fails only its own request.
Submissions with an ``Idempotency-Key`` take the direct path in ``domain``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from services.intake import domain

log = logging.getLogger(__name__)


class SubmitBatcher:
    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 128, workers: int = 3) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.workers = workers
        self._queue: asyncio.Queue[tuple[domain.Prepared, asyncio.Future[None]]] = asyncio.Queue()

    async def submit(self, prepared: domain.Prepared) -> None:
        """Store ``prepared``; returns after its transaction committed, raises its error."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((prepared, fut))
        await fut

    async def run(self) -> None:
        """Run the workers until cancelled (several, so one batch forms while another
        commits)."""
        tasks = [asyncio.ensure_future(self._worker()) for _ in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            while not self._queue.empty():
                _, fut = self._queue.get_nowait()
                if not fut.done():
                    fut.set_exception(RuntimeError("intake is shutting down"))

    async def _worker(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < self.max_batch and not self._queue.empty():
                items.append(self._queue.get_nowait())
            live = [(p, f) for p, f in items if not f.done()]
            if not live:
                continue
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await domain.store(conn, [p for p, _ in live])
            except asyncio.CancelledError:
                for _, f in live:
                    if not f.done():
                        f.set_exception(RuntimeError("intake is shutting down"))
                raise
            except Exception:  # noqa: BLE001 - retried one by one below
                if len(live) == 1:
                    await self._one(*live[0])
                    continue
                for p, f in live:
                    await self._one(p, f)
                continue
            for _, f in live:
                if not f.done():
                    f.set_result(None)

    async def _one(self, p: domain.Prepared, fut: asyncio.Future[None]) -> None:
        for attempt in range(3):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await domain.store(conn, [p])
            except asyncpg.UniqueViolationError as e:
                if attempt == 2:
                    fut.set_exception(e)
                    return
                p.tracking_code = domain.new_tracking_code(p.cmd.region)
                continue
            except Exception as e:  # noqa: BLE001 - handed to the waiting request
                if not fut.done():
                    fut.set_exception(e)
                return
            if not fut.done():
                fut.set_result(None)
            return
