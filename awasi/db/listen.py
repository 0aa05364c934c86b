"""Waiting for PostgreSQL notifications by key (their payload): the outbox relay
waits for new rows, the queue long-polls for changes of an agency's tickets.

A waiter asks ``version(key)`` before it reads the database, reads, and then
``wait``s for a version past the one it saw: a NOTIFY that lands between its read
and its wait is therefore not missed.

One LISTEN connection per process, reconnected with backoff when it drops.
Notifications are hints, never the truth: a woken request reads the database again,
and every waiter is woken after a reconnect (what was sent meanwhile is lost) and on
``close`` (so graceful shutdown does not wait out the long-polls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

log = logging.getLogger(__name__)

Version = tuple[int, int]  # (epoch: bumped on reconnect and close, the key's count)


class Notifications:
    def __init__(self, dsn: str, channel: str) -> None:
        self.dsn = dsn
        self.channel = channel
        self.closed = False
        self._epoch = 0
        self._counts: dict[str, int] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def version(self, key: str) -> Version:
        return self._epoch, self._counts.get(key, 0)

    async def wait(self, key: str, seen: Version, within: float) -> bool:
        """Wait until ``key`` moves past ``seen`` or ``within`` seconds pass; True if
        it moved (or the feed closed: the caller should answer now)."""
        if self.closed or self.version(key) != seen:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(key, set())
        waiters.add(waiter)
        try:
            async with asyncio.timeout(within):
                await waiter
        except TimeoutError:
            return False
        else:
            return True
        finally:
            waiters.discard(waiter)
            if not waiters:
                self._waiters.pop(key, None)

    def close(self) -> None:
        self.closed = True
        self._wake_all()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff."""
        backoff = 0.2
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as e:
                log.warning("cannot LISTEN; waiters fall back to their timeouts",
                            extra={"channel": self.channel, "error": repr(e)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _, lost=lost: lost.set())
            try:
                await conn.add_listener(self.channel, self._on_notify)
                self._wake_all()  # whatever was sent while not listening is lost
                backoff = 0.2
                while not conn.is_closed():  # checked too: a lost socket may not call back
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 1.0)
            except (OSError, asyncpg.PostgresError) as e:
                log.warning("LISTEN connection lost", extra={"error": repr(e)})
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, key: str) -> None:
        self._counts[key] = self._counts.get(key, 0) + 1
        for waiter in self._waiters.get(key, ()):
            if not waiter.done():
                waiter.set_result(None)

    def _wake_all(self) -> None:
        self._epoch += 1
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
