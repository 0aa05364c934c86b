"""``awasi audit verify``: walk the oversight timeline's hash chain from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from awasi.settings import Settings


async def verify_chain(dsn: str) -> dict[str, Any]:
    from awasi.db.pool import connect
    from services.oversight.chain import verify

    conn = await connect(dsn)
    try:
        return (await verify(conn)).to_json()
    finally:
        await conn.close()


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Print the verdict as JSON; exit 0 if the chain holds, 1 if it does not."""
    verdict = asyncio.run(verify_chain(settings.require_database()))
    print(json.dumps(verdict, indent=2))
    if not verdict["ok"]:
        bad = verdict["first_bad"]
        print(f"first bad entry: seq {bad['seq']} (event {bad['event_id']}): {bad['reason']}")
    return 0 if verdict["ok"] else 1


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="the oversight timeline's audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="walk the hash chain; name the first bad entry")
    verify.set_defaults(func=cmd_audit_verify)
