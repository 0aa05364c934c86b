"""``awasi users add``: create staff, heads, triage officers, panel members, admins."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from awasi.settings import Settings


def register(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="staff identity")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="create a user")
    add.add_argument("--username", required=True)
    add.add_argument("--password", required=True)
    add.add_argument("--role", required=True,
                     choices=("staff", "head", "triage", "panel", "admin"))
    add.add_argument("--agency", help="agency code (required for staff and head)")
    add.add_argument("--region", help="region code a triage officer works (default: all)")
    add.add_argument("--name", help="display name")
    add.set_defaults(func=cmd_users_add)


def cmd_users_add(settings: Settings, args: argparse.Namespace) -> int:
    from awasi.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(settings.catalog)
    except CatalogError as e:
        print(f"awasi: {e}", file=sys.stderr)
        return 2
    region = args.region
    if args.agency is not None:
        if args.agency not in catalog.agencies:
            print(f"awasi: unknown agency {args.agency!r} (not in {settings.catalog})",
                  file=sys.stderr)
            return 2
        if args.role == "triage" and region is None:
            region = catalog.agencies[args.agency].region
    if region is not None and region not in catalog.regions:
        print(f"awasi: unknown region {region!r}", file=sys.stderr)
        return 2
    if args.role in ("staff", "head") and args.agency is None:
        print(f"awasi: --agency is required for role {args.role}", file=sys.stderr)
        return 2
    return asyncio.run(_add(settings, args, region))


async def _add(settings: Settings, args: argparse.Namespace, region: str | None) -> int:
    from awasi.db import migrate_schema
    from awasi.db.pool import connect
    from awasi.identity import SCHEMA, migrations
    from awasi.identity.errors import IdentityError
    from awasi.identity.store import add_user

    conn = await connect(settings.require_database())
    try:
        await migrate_schema(conn, SCHEMA, migrations())
        try:
            user = await add_user(
                conn, username=args.username, password=args.password, role=args.role,
                # Only staff and heads belong to an agency; for a triage officer the
                # agency only named the region (resolved above).
                agency=args.agency if args.role in ("staff", "head") else None,
                region=region, display_name=args.name,
            )
        except IdentityError as e:
            print(f"awasi: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    finally:
        await conn.close()
    print(f"added {user.username} ({user.role}"
          f"{', ' + user.agency if user.agency else ''}"
          f"{', region ' + user.region if user.region else ''})")
    return 0
