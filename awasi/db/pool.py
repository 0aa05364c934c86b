"""Connection pools."""

from __future__ import annotations

import asyncpg

from awasi import jsoncodec


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects, everywhere.
    await conn.set_type_codec(
        "jsonb", encoder=jsoncodec.dumps, decoder=jsoncodec.loads, schema="pg_catalog"
    )
    await conn.set_type_codec(
        "json", encoder=jsoncodec.dumps, decoder=jsoncodec.loads, schema="pg_catalog"
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a released connection gets instead of asyncpg's reset query (RESET ALL,
    UNLISTEN *, advisory unlock: a round trip on every release, about a twentieth of
    a busy service's CPU on the benchmark machine). The pool still rolls back a
    transaction left open. Awasi leaves no other session state on pooled
    connections: settings only as SET LOCAL, LISTEN on dedicated connections, session
    advisory locks only through ``awasi.db.locks.session_advisory_lock``, which
    closes the connection when it cannot be sure the lock was released."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool whose connections encode and decode JSON for ``json``/``jsonb``."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection,
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn
