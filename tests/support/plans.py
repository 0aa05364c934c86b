"""Query plans of what the consumers run per event (tests/test_query_plans.py).

- ``StatementLog``: an asyncpg query logger (``conn.add_query_logger``) that keeps
  every data statement a connection ran, with its arguments.
- ``grow``: makes history without knowing the schema: every table that grows is
  copied onto itself ``copies`` times, with each key column (primary, unique or
  foreign key, or any uuid) rewritten the same way in every table, so references
  stay valid and each copy is a new complaint with the same shape.
- ``seq_scans``: the tables an EXPLAIN (FORMAT JSON) plan reads by a sequential scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

# Tables whose size does not grow with the number of complaints: singletons, the job
# list, keys, migrations bookkeeping. A sequential scan of one of these is fine.
FIXED = frozenset({
    "schema_migrations", "chain_head", "chain_heads", "chain_verified", "jobs",
    "signing_keys", "stats_snapshot",
})
DATA = ("select", "insert", "update", "delete", "with")


@dataclass(eq=False)  # hashable: asyncpg keeps loggers in a set
class StatementLog:
    """Every data statement logged, first arguments kept (one EXPLAIN per text)."""

    seen: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # The slowest run of each statement, in seconds (printed when a plan is bad).
    slowest: dict[str, float] = field(default_factory=dict)

    def __call__(self, record: Any) -> None:
        query = record.query.strip()
        if not query.lower().startswith(DATA) or record.exception is not None:
            return
        args = record.args
        if isinstance(args, list):
            args = args[0] if args else ()  # executemany: its first row of arguments
        self.seen.setdefault(query, tuple(args or ()))
        self.slowest[query] = max(self.slowest.get(query, 0.0), record.elapsed)

    def __iter__(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        return iter(self.seen.items())


async def _columns(conn: asyncpg.Connection, schema: str, table: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
               a.attgenerated <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid), '')
                   LIKE 'nextval(%' AS generated,
               -- A key: alone unique, or a foreign key (a multi-column unique key
               -- is kept unique by its id column, rewritten by name).
               EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid
                       AND i.indisunique AND i.indnatts = 1 AND i.indkey[0] = a.attnum)
               OR EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = a.attrelid
                          AND c.contype = 'f' AND a.attnum = ANY (c.conkey))
               OR right(a.attname, 3) = '_id'
               -- A number in any unique key (a position such as timeline.part_seq).
               OR (a.atttypid IN ('int4'::regtype, 'int8'::regtype) AND EXISTS (
                   SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid
                   AND i.indisunique AND a.attnum = ANY (i.indkey))) AS key
        FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = format('%I.%I', $1::text, $2::text)::regclass
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """, schema, table)


def _copy_of(col: asyncpg.Record) -> str:
    """The expression that makes copy ``g`` of a column's value."""
    name = f'"{col["name"]}"'
    kind = col["type"]
    if kind == "uuid":
        return f"md5({name}::text || g)::uuid"
    if not col["key"]:
        return name
    if kind in ("bigint", "integer"):
        return f"{name} + g * 1000000"
    if kind == "text":
        return f"{name} || '-' || g"
    return name


async def grow(conn: asyncpg.Connection, schemas: tuple[str, ...], copies: int) -> dict[str, int]:
    """Copy every growing table of ``schemas`` onto itself ``copies`` times (parents
    before children, by foreign keys), then ANALYZE. Returns rows per table."""
    tables = [(r["schema"], r["table"]) for r in await conn.fetch(
        """
        WITH RECURSIVE t AS (
            SELECT c.oid, n.nspname AS schema, c.relname AS table
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname = ANY ($1::text[])
        ), depth (oid, d) AS (
            SELECT oid, 0 FROM t
            UNION ALL
            SELECT f.conrelid, depth.d + 1 FROM depth
            JOIN pg_constraint f ON f.confrelid = depth.oid AND f.contype = 'f'
                 AND f.conrelid <> f.confrelid
            WHERE depth.d < 10
        )
        SELECT t.schema, t.table, max(depth.d) AS d FROM t JOIN depth USING (oid)
        GROUP BY t.schema, t.table ORDER BY d, t.schema, t.table
        """, list(schemas))]
    out = {}
    for schema, table in tables:
        if table in FIXED:
            continue
        # Serial ids are left to their sequence: copies come before anything new.
        cols = [c for c in await _columns(conn, schema, table) if not c["generated"]]
        names = ", ".join(f'"{c["name"]}"' for c in cols)
        exprs = ", ".join(_copy_of(c) for c in cols)
        await conn.execute(
            f'INSERT INTO "{schema}"."{table}" ({names}) SELECT {exprs}'
            f' FROM "{schema}"."{table}", generate_series(1, {int(copies)}) AS g')
        out[f"{schema}.{table}"] = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}"."{table}"')
    for schema in schemas:
        for s, table in tables:
            if s == schema:
                await conn.execute(f'ANALYZE "{schema}"."{table}"')
    return out


def seq_scans(plan: Any) -> list[str]:
    """``schema.table`` of every Seq Scan node in an EXPLAIN (FORMAT JSON) plan."""
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Node Type") == "Seq Scan":
            found.append(f'{node.get("Schema")}.{node.get("Relation Name")}')
        for child in node.get("Plans", ()):
            walk(child)

    for top in plan:
        walk(top["Plan"])
    return found


async def explain(conn: asyncpg.Connection, query: str, args: tuple[Any, ...]) -> Any:
    """The plan the server would choose for ``query`` with these arguments (not run)."""
    return await conn.fetchval(f"EXPLAIN (VERBOSE, FORMAT JSON) {query}", *args)
