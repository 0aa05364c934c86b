"""Session-level advisory locks on pooled connections.

The pool does not run asyncpg's reset query when a connection comes back (see
``awasi.db.pool``), so a session lock left behind would stay with the connection.
This helper makes sure that cannot happen: if taking or releasing the lock is
interrupted (a cancelled request, a lost connection), the connection is closed, and
the server drops every lock the session held.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


@asynccontextmanager
async def session_advisory_lock(conn: asyncpg.Connection, *key: int) -> AsyncIterator[None]:
    """Hold ``pg_advisory_lock(*key)`` (one bigint or two ints) for the block."""
    args = ", ".join(f"${i}" for i in range(1, len(key) + 1))
    try:
        await conn.execute(f"SELECT pg_advisory_lock({args})", *key)
    except BaseException:
        conn.terminate()  # the lock may have been granted as the wait was cancelled
        raise
    try:
        yield
    finally:
        try:
            await conn.execute(f"SELECT pg_advisory_unlock({args})", *key)
        except BaseException:
            conn.terminate()
            raise


@asynccontextmanager
async def try_session_advisory_lock(conn: asyncpg.Connection,
                                    *key: int) -> AsyncIterator[bool]:
    """Try ``pg_try_advisory_lock(*key)`` once; yield whether it was granted, and
    release it after the block if it was. Never waits for the lock."""
    args = ", ".join(f"${i}" for i in range(1, len(key) + 1))
    try:
        held = bool(await conn.fetchval(f"SELECT pg_try_advisory_lock({args})", *key))
    except BaseException:
        conn.terminate()  # the lock may have been granted as the call was interrupted
        raise
    try:
        yield held
    finally:
        if held:
            try:
                await conn.execute(f"SELECT pg_advisory_unlock({args})", *key)
            except BaseException:
                conn.terminate()
                raise
