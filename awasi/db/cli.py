"""``awasi db roles``: the database roles and their grants (``awasi.db.roles``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from awasi.settings import Settings


def register(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="the database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    roles = db_sub.add_parser(
        "roles", help="create or update the owner and per-service roles and their grants "
        "(as an admin: AWASI_DATABASE_URL; each role's name and password from its DSN: "
        "AWASI_DB_OWNER_URL, AWASI_DB_INTAKE_URL, AWASI_DB_ROUTER_URL, "
        "AWASI_DB_OVERSIGHT_URL)")
    roles.set_defaults(func=cmd_db_roles)


async def create_roles(admin_dsn: str, env: dict[str, str]) -> list[str]:
    from awasi.db.pool import connect
    from awasi.db.roles import RoleLogins, apply_roles

    logins = RoleLogins.from_env(env)  # before connecting: a typo fails first
    conn = await connect(admin_dsn)
    try:
        return await apply_roles(conn, logins)
    finally:
        await conn.close()


def cmd_db_roles(settings: Settings, args: argparse.Namespace) -> int:
    from awasi.db.roles import RoleError

    try:
        done = asyncio.run(create_roles(settings.require_database(), dict(os.environ)))
    except RoleError as e:
        print(f"awasi db roles: {e} (nothing was changed)", file=sys.stderr)
        return 2
    for line in done:
        print(line)
    print("database roles up to date")
    return 0
