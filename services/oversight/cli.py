"""``awasi audit``: the oversight timeline's audit trail from the command line.

- ``awasi audit verify``: walk the whole hash chain (not incrementally, unlike the
  public endpoint) and name the first bad entry.
- ``awasi audit verify --checkpoint FILE``: the same, and every signed checkpoint in
  FILE (one checkpoint, a list, or a saved ``GET /api/v1/audit/checkpoints``) must
  still match: this catches a writer who recomputed every hash and the stored head.
- ``awasi audit checkpoint``: sign and publish a checkpoint now; print it.
- ``awasi stats rebuild``: recompute the statistics' rollups from the cases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from awasi.settings import Settings


async def verify_chain(dsn: str, checkpoints: list[dict[str, Any]] | None = None
                       ) -> dict[str, Any]:
    from awasi.db.pool import connect
    from services.oversight import audit
    from services.oversight.chain import verify

    conn = await connect(dsn)
    try:
        if checkpoints:
            return await audit.verify_with_checkpoints(conn, checkpoints)
        return (await verify(conn)).to_json()
    finally:
        await conn.close()


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Print the verdict as JSON; exit 0 if the chain holds, 1 if it does not, 2 if
    the checkpoint file is not a genuine checkpoint."""
    from services.oversight.audit import BadCheckpoint, parse_checkpoints

    checkpoints = None
    if args.checkpoint:
        try:
            checkpoints = parse_checkpoints(json.loads(Path(args.checkpoint).read_text()))
        except (OSError, ValueError) as e:  # BadCheckpoint and JSON errors are ValueErrors
            kind = "not a valid checkpoint" if isinstance(e, BadCheckpoint) else "unreadable"
            print(f"{args.checkpoint}: {kind}: {e}")
            return 2
    verdict = asyncio.run(verify_chain(settings.require_database(), checkpoints))
    print(json.dumps(verdict, indent=2))
    if not verdict["ok"]:
        bad = verdict["first_bad"]
        where = ("" if bad.get("partition") is None
                 else f" (partition {bad['partition']}, entry {bad['partition_seq']})")
        print(f"first bad entry: seq {bad['seq']}{where} (event {bad['event_id']}):"
              f" {bad['reason']}")
        if "rewritten_between" in bad:
            lo, hi = bad["rewritten_between"]
            chain_name = ("" if bad.get("partition") is None
                          else f" of partition {bad['partition']}")
            print(f"the rewritten entry lies between seq {lo} and seq {hi}{chain_name}")
    return 0 if verdict["ok"] else 1


async def make_checkpoint(settings: Settings) -> dict[str, Any]:
    from awasi.db.pool import connect
    from services.oversight import audit
    from services.oversight.audit_key import load_signing_key

    key = load_signing_key(settings)
    conn = await connect(settings.require_database())
    try:
        return await audit.make_checkpoint(conn, key, datetime.now(UTC), requested_by="cli")
    finally:
        await conn.close()


def cmd_audit_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    """Sign the current head with the service's key (same settings), print it as JSON."""
    print(json.dumps(asyncio.run(make_checkpoint(settings)), indent=2))
    return 0


async def rebuild_rollups(settings: Settings) -> None:
    from awasi.catalog import load_catalog
    from awasi.db.pool import connect
    from services.oversight import rollups

    catalog = load_catalog(settings.catalog)
    conn = await connect(settings.require_database())
    try:
        async with conn.transaction():
            await rollups.rebuild(conn, catalog)
    finally:
        await conn.close()


def cmd_stats_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    """Recompute the statistics' rollups from the cases (services/oversight/rollups.py)."""
    asyncio.run(rebuild_rollups(settings))
    print("statistics rollups rebuilt")
    return 0


def register(subparsers: Any) -> None:
    stats = subparsers.add_parser("stats", help="oversight's statistics rollups")
    stats_sub = stats.add_subparsers(dest="stats_command", required=True)
    rebuild = stats_sub.add_parser("rebuild", help="recompute the rollups from the cases"
                                                   " (the consumer keeps them afterwards)")
    rebuild.set_defaults(func=cmd_stats_rebuild)
    audit = subparsers.add_parser("audit", help="the oversight timeline's audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="walk the whole hash chain; name the first"
                                                 " bad entry")
    verify.add_argument("--checkpoint", metavar="FILE",
                        help="a saved signed checkpoint (or list) the chain must still match")
    verify.set_defaults(func=cmd_audit_verify)
    checkpoint = audit_sub.add_parser("checkpoint", help="sign and publish a checkpoint now")
    checkpoint.set_defaults(func=cmd_audit_checkpoint)
