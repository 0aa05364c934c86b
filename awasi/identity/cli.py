"""``awasi users ...``: create, list, disable, enable staff accounts and set their
passwords. A password is read from standard input (one line) or, on a terminal,
from a ``getpass`` prompt; never from an argument, which other local users can read
in the process list and which shells keep in their history (``add --password``
stays, for old scripts, with a warning)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from awasi.settings import Settings

CLI_ACTOR = "cli"


def register(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="staff identity")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="create a user (password from standard input)")
    add.add_argument("--username", required=True)
    add.add_argument("--password", help="DEPRECATED: visible to other local users;"
                     " pipe it on standard input instead")
    add.add_argument("--role", required=True,
                     choices=("staff", "head", "triage", "panel", "admin"))
    add.add_argument("--agency", help="agency code (required for staff and head)")
    add.add_argument("--region", help="region code a triage officer works (default: all)")
    add.add_argument("--name", help="display name")
    add.set_defaults(func=cmd_users_add)

    ls = users_sub.add_parser("list", help="list users (never their passwords)")
    ls.set_defaults(func=cmd_users_list)
    for name, helptext in (("disable", "disable a user; their sessions and tokens end"),
                           ("enable", "enable a disabled user")):
        p = users_sub.add_parser(name, help=helptext)
        p.add_argument("--username", required=True)
        p.set_defaults(func=cmd_users_set_active, active=name == "enable")
    pw = users_sub.add_parser("passwd", help="set a user's password (from standard input);"
                              " their sessions and tokens end")
    pw.add_argument("--username", required=True)
    pw.set_defaults(func=cmd_users_passwd)


def read_new_password(prompt: str = "New password: ") -> str | None:
    """The new password: a getpass prompt (typed twice) on a terminal, else the first
    line of standard input. ``None`` (after a message) if none was given or the two
    entries differ."""
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            print("awasi: the two passwords differ", file=sys.stderr)
            return None
        password = first
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("awasi: no password given on standard input", file=sys.stderr)
        return None
    return password


def cmd_users_add(settings: Settings, args: argparse.Namespace) -> int:
    from awasi.catalog import CatalogError, load_catalog
    from awasi.identity.errors import WeakPassword
    from awasi.identity.strength import check_password

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
    if args.password is not None:
        print("awasi: warning: --password is visible to other users of this machine and"
              " kept in shell history; pipe the password on standard input instead",
              file=sys.stderr)
        password = args.password
    else:
        read = read_new_password()
        if read is None:
            return 2
        password = read
    try:
        check_password(password, (args.username, args.name or ""))
    except WeakPassword as e:
        print(f"awasi: {e}", file=sys.stderr)
        return 2
    return asyncio.run(_add(settings, args, region, password))


async def _add(settings: Settings, args: argparse.Namespace, region: str | None,
               password: str) -> int:
    from awasi.identity.errors import IdentityError
    from awasi.identity.store import add_user

    conn = await _connect(settings)
    try:
        try:
            user = await add_user(
                conn, username=args.username, password=password, role=args.role,
                # Only staff and heads belong to an agency; for a triage officer the
                # agency only named the region (resolved above).
                agency=args.agency if args.role in ("staff", "head") else None,
                region=region, display_name=args.name, actor=CLI_ACTOR,
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


async def _connect(settings: Settings) -> Any:
    from awasi.db import migrate_schema
    from awasi.db.pool import connect
    from awasi.identity import SCHEMA, migrations

    conn = await connect(settings.require_database())
    await migrate_schema(conn, SCHEMA, migrations())
    return conn


def cmd_users_list(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_list(settings))


async def _list(settings: Settings) -> int:
    from awasi.identity.store import list_accounts

    conn = await _connect(settings)
    try:
        accounts = await list_accounts(conn)
    finally:
        await conn.close()
    rows = [("USERNAME", "ROLE", "AGENCY", "ENABLED", "LAST LOGIN")]
    for a in accounts:
        rows.append((a.user.username, a.user.role, a.user.agency or a.user.region or "-",
                     "yes" if a.user.active else "no",
                     a.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if a.last_login_at
                     else "never"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_users_set_active(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_set_active(settings, args.username, args.active))


async def _set_active(settings: Settings, username: str, active: bool) -> int:
    from awasi.db.pool import create_pool
    from awasi.identity.errors import UnknownUser
    from awasi.identity.store import set_active

    await (await _connect(settings)).close()
    pool = await create_pool(settings.require_database(), min_size=1, max_size=1)
    try:
        await set_active(pool, username, active, actor=CLI_ACTOR)
    except UnknownUser:
        print(f"awasi: no user {username!r}", file=sys.stderr)
        return 1
    finally:
        await pool.close()
    print(f"{'enabled' if active else 'disabled'} {username}"
          f"{'' if active else '; their sessions and tokens have ended'}")
    return 0


def cmd_users_passwd(settings: Settings, args: argparse.Namespace) -> int:
    from awasi.identity.errors import WeakPassword
    from awasi.identity.strength import check_password

    password = read_new_password()
    if password is None:
        return 2
    try:
        check_password(password, (args.username,))
    except WeakPassword as e:
        print(f"awasi: {e}", file=sys.stderr)
        return 2
    return asyncio.run(_passwd(settings, args.username, password))


async def _passwd(settings: Settings, username: str, password: str) -> int:
    from awasi.db.pool import create_pool
    from awasi.identity.errors import UnknownUser
    from awasi.identity.store import set_password

    await (await _connect(settings)).close()
    pool = await create_pool(settings.require_database(), min_size=1, max_size=1)
    try:
        await set_password(pool, username, password, actor=CLI_ACTOR)
    except UnknownUser:
        print(f"awasi: no user {username!r}", file=sys.stderr)
        return 1
    finally:
        await pool.close()
    print(f"password of {username} set; their sessions and tokens have ended")
    return 0
