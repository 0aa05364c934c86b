"""Panel members' declared conflicts of interest.

A member who works for or with an agency declares it; from then on they do not
claim, draft, amend, withdraw or confirm findings on that agency's cases (they may
still read them: reading decides nothing). The queue shows who is recused from each
case and why, so the panel can see the rule at work. ``check`` is the one place the
rule is enforced; every action calls it under the case's lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from awasi.web.errors import Forbidden, NotFound


class ConflictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    agency: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    reason: str = Field(min_length=3, max_length=500)


def _json(row: asyncpg.Record) -> dict[str, Any]:
    return {"username": row["username"], "agency": row["agency"], "reason": row["reason"],
            "declared_at": row["declared_at"].isoformat()}


async def declare(conn: asyncpg.Connection | asyncpg.Pool, username: str, body: ConflictIn,
                  now: datetime) -> dict[str, Any]:
    """Declare (or restate the reason of) a conflict with ``body.agency`` (a catalog
    code the caller has checked)."""
    row = await conn.fetchrow(
        "INSERT INTO oversight.panel_conflicts (username, agency, reason, declared_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (username, agency)"
        " DO UPDATE SET reason = EXCLUDED.reason RETURNING *",
        username, body.agency, body.reason, now)
    return _json(row)


async def withdraw(conn: asyncpg.Connection | asyncpg.Pool, username: str,
                   agency: str) -> None:
    """End one's own declared conflict; ``NotFound`` if there is none."""
    done = await conn.fetchval(
        "DELETE FROM oversight.panel_conflicts WHERE username = $1 AND agency = $2"
        " RETURNING agency", username, agency)
    if done is None:
        raise NotFound("No such declared conflict")


async def listing(conn: asyncpg.Connection | asyncpg.Pool,
                  username: str | None = None) -> list[dict[str, Any]]:
    """Every declared conflict (or one member's), by agency then member: the panel
    sees each other's declarations."""
    rows = await conn.fetch(
        "SELECT * FROM oversight.panel_conflicts WHERE $1::text IS NULL OR username = $1"
        " ORDER BY agency, username", username)
    return [_json(r) for r in rows]


async def check(conn: asyncpg.Connection, username: str, agency: str | None) -> None:
    """Raise ``Forbidden`` (code ``conflict_of_interest``) if ``username`` has declared
    a conflict with ``agency``."""
    if agency is None:
        return
    reason = await conn.fetchval(
        "SELECT reason FROM oversight.panel_conflicts WHERE username = $1 AND agency = $2",
        username, agency)
    if reason is not None:
        raise Forbidden("You declared a conflict of interest with this case's agency",
                        code="conflict_of_interest",
                        details={"agency": agency, "reason": reason})
