"""The hook through which the citizen is told of a change of status.

The consumer calls ``on_status_change`` inside the transaction that applied the
router's or oversight's event, after the status and timeline were updated, so a
notification queued here commits (or rolls back) with the change it reports.
"""

from __future__ import annotations

import asyncpg

from awasi.events.envelope import Envelope


async def on_status_change(conn: asyncpg.Connection, complaint_id: str, envelope: Envelope) -> None:
    """Queue notifications for the citizen (the Telegram package fills this in)."""
    pass
