"""The ``awasi`` command.

``awasi dev`` runs everything on this machine (embedded PostgreSQL and broker, the
three services, demo data); ``awasi serve NAME`` runs one service; ``awasi migrate``
applies every schema's migrations; ``awasi outbox replay --since`` republishes sent
events; ``awasi events schema`` writes the AsyncAPI document of the topics;
``awasi seed demo`` and ``awasi users add`` manage data.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from awasi.settings import Settings, SettingsError

SERVICES = ("intake", "router", "oversight")
# Schemas in migration order: identity first (router and oversight refer to it).
EXTRA_SCHEMAS: dict[str, str] = {"identity": "awasi.identity"}


def service_module(name: str) -> ModuleType:
    return importlib.import_module(f"services.{name}.app")


def all_schema_migrations() -> list[tuple[str, list[Any]]]:
    """(schema, migrations) for every schema the platform owns, in order."""
    result: list[tuple[str, list[Any]]] = []
    for module_name in EXTRA_SCHEMAS.values():
        module = importlib.import_module(module_name)
        result.append((module.SCHEMA, module.migrations()))
    for name in SERVICES:
        module = service_module(name)
        result.append((module.SCHEMA, module.migrations()))
    return result


def _port(settings: Settings, name: str) -> int:
    return int(getattr(settings, f"{name}_port"))


# --- commands ------------------------------------------------------------------------

def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from awasi import jsonlog, tracing
    from awasi.secretkey import check_audit_signing_key, check_secret_key
    from awasi.web.app import serve

    # Before anything else: a service with a public key would accept forged tokens.
    check_secret_key(settings.secret_key)
    if args.service == "oversight":
        check_audit_signing_key(settings.audit_signing_key)
    jsonlog.configure(args.service, settings.log_level, settings.log_json)
    # The process's tracer provider from the standard OTEL_* variables (no-op unless
    # they ask for export), before the app factory takes it up.
    tracing.configure_process(args.service, queries=settings.trace_queries)
    settings.require_database()
    settings.require_kafka()
    app = service_module(args.service).create_app(settings)
    serve(app, settings.host, _port(settings, args.service), settings.shutdown_timeout_s)
    return 0


async def migrate_all(dsn: str) -> list[str]:
    from awasi.db import migrate_schema
    from awasi.db.pool import connect

    conn = await connect(dsn)
    try:
        applied: list[str] = []
        for schema, migrations in all_schema_migrations():
            applied += await migrate_schema(conn, schema, migrations)
        return applied
    finally:
        await conn.close()


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    applied = asyncio.run(migrate_all(settings.require_database()))
    for name in applied:
        print(f"applied {name}")
    print(f"migrations up to date ({len(applied)} applied now)")
    return 0


async def replay_all(dsn: str, since: datetime, schemas: list[str]) -> dict[str, int]:
    from awasi.db import create_pool
    from awasi.events.relay import replay

    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        return {schema: await replay(pool, schema, since) for schema in schemas}
    finally:
        await pool.close()


def parse_since(value: str) -> datetime:
    """An ISO 8601 instant (UTC if no offset) or a duration back from now: 30m, 6h, 7d."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"--since must be ISO 8601 (2026-11-23T10:00:00+07:00) or like 6h, 7d: {value!r}"
        ) from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmd_outbox_replay(settings: Settings, args: argparse.Namespace) -> int:
    schemas = list(SERVICES) if args.service == "all" else [args.service]
    counts = asyncio.run(replay_all(settings.require_database(), args.since, schemas))
    for schema, n in counts.items():
        print(f"{schema}: {n} events queued for republishing")
    return 0


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from awasi import devstack

    return devstack.run(settings, Path(args.data_dir or Path(settings.data_dir) / "dev"),
                        seed=not args.no_seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="awasi", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run everything on this machine, embedded, with demo data")
    dev.add_argument("--data-dir", help="where the embedded database lives "
                     "(default: $AWASI_DATA_DIR/dev)")
    dev.add_argument("--no-seed", action="store_true", help="do not load the demo data")
    dev.set_defaults(func=cmd_dev)

    serve = sub.add_parser("serve", help="run one service")
    serve.add_argument("service", choices=SERVICES)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply every schema's migrations")
    migrate.set_defaults(func=cmd_migrate)

    outbox = sub.add_parser("outbox", help="the transactional outbox")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    replay = outbox_sub.add_parser("replay", help="republish events sent since a moment")
    replay.add_argument("--since", required=True, type=parse_since,
                        help="ISO 8601 instant, or a duration back from now (6h, 7d)")
    replay.add_argument("--service", default="all", choices=(*SERVICES, "all"))
    replay.set_defaults(func=cmd_outbox_replay)

    life = sub.add_parser("lifecycle", help="the one lifecycle of a complaint")
    life_sub = life.add_subparsers(dest="lifecycle_command", required=True)
    life_sub.add_parser("diagram", help="print the state diagram (Mermaid)").set_defaults(
        func=lambda _s, _a: _print(lifecycle_text("diagram")))
    life_sub.add_parser("table", help="print the tables (Markdown)").set_defaults(
        func=lambda _s, _a: _print(lifecycle_text("table")))

    for extra in _EXTRA_PARSERS:
        extra(sub)
    return parser


def lifecycle_text(what: str) -> str:
    """``awasi lifecycle diagram|table``: generated from awasi/lifecycle.py; the
    copies in docs/LIFECYCLE.md are checked against these by tests/test_lifecycle.py."""
    from awasi import lifecycle

    return lifecycle.mermaid() if what == "diagram" else lifecycle.markdown()


def _print(text: str) -> int:
    print(text, end="")
    return 0


# Later packages (seed, users, audit) register their subcommands here.
_EXTRA_PARSERS: list[Callable[[Any], None]] = []


def main(argv: list[str] | None = None) -> int:
    from awasi.db.migrate import MigrationError

    _load_plugins()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(settings, args) or 0)
    except SettingsError as e:
        print(f"awasi: configuration error: {e}", file=sys.stderr)
        return 2
    except MigrationError as e:
        print(f"awasi: database schema: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


def _load_plugins() -> None:
    for module in ("awasi.demo", "awasi.db.cli", "awasi.events.cli", "awasi.identity.cli",
                   "services.oversight.cli",
                   "awasi.catalog.cli", "services.intake.cli", "services.router.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if not e.name or not module.startswith(e.name):
                raise
            continue
        register = getattr(mod, "register", None)
        if register and register not in _EXTRA_PARSERS:
            _EXTRA_PARSERS.append(register)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
