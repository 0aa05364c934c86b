"""``awasi catalog``: check a catalog file and try its routing and deadlines.

    awasi catalog check [PATH]                      validate (default: AWASI_CATALOG)
    awasi catalog route REGION CATEGORY TEXT        which agency, by which rule
    awasi catalog policy REGION [--agency A] [--category C] [--from ISO]
                                                    the policy and its due dates
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from awasi.catalog.loader import Catalog, CatalogError, UnknownCode, load_catalog
from awasi.settings import Settings


def register(subparsers: Any) -> None:
    catalog = subparsers.add_parser("catalog", help="check the deployment catalog")
    sub = catalog.add_subparsers(dest="catalog_command", required=True)

    check = sub.add_parser("check", help="validate a catalog file")
    check.add_argument("path", nargs="?", help="catalog file (default: $AWASI_CATALOG)")
    check.set_defaults(func=cmd_check)

    route = sub.add_parser("route", help="route a complaint text as the router would")
    route.add_argument("region")
    route.add_argument("category")
    route.add_argument("text")
    route.add_argument("--catalog", help="catalog file (default: $AWASI_CATALOG)")
    route.set_defaults(func=cmd_route)

    policy = sub.add_parser("policy", help="the deadline policy and due dates")
    policy.add_argument("region")
    policy.add_argument("--agency")
    policy.add_argument("--category")
    policy.add_argument("--from", dest="start", type=_instant,
                        help="ISO 8601 instant the clock starts (default: now)")
    policy.add_argument("--catalog", help="catalog file (default: $AWASI_CATALOG)")
    policy.set_defaults(func=cmd_policy)


def _instant(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {value!r}") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _load(path: str) -> Catalog | None:
    try:
        return load_catalog(path)
    except CatalogError as e:
        print(e, file=sys.stderr)
        return None


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    catalog = _load(args.path or settings.catalog)
    if catalog is None:
        return 1
    rules = catalog.document.rules
    print(f"{catalog.source}: ok: {len(catalog.regions)} regions, "
          f"{len(catalog.agencies)} agencies, {len(catalog.categories)} categories, "
          f"{sum(len(r.categories) for r in rules)} category rules, "
          f"{sum(len(r.keywords) for r in rules)} keywords")
    for region in catalog.regions.values():
        print(f"  {region.code}  {region.name}  ({region.timezone}, "
              f"{len(catalog.agencies_in(region.code))} agencies, "
              f"{len(catalog.categories_for(region.code))} categories)")
    return 0


def cmd_route(settings: Settings, args: argparse.Namespace) -> int:
    catalog = _load(args.catalog or settings.catalog)
    if catalog is None:
        return 1
    try:
        decision = catalog.route(args.region, args.category, args.text)
    except UnknownCode as e:
        print(f"awasi: {e}", file=sys.stderr)
        return 1
    print(f"{decision.agency or 'triage queue of ' + args.region}  ({decision.rule})")
    return 0


def cmd_policy(settings: Settings, args: argparse.Namespace) -> int:
    catalog = _load(args.catalog or settings.catalog)
    if catalog is None:
        return 1
    try:
        policy = catalog.policy(args.region, args.agency, args.category)
    except UnknownCode as e:
        print(f"awasi: {e}", file=sys.stderr)
        return 1
    region = catalog.regions[args.region]
    start = args.start or datetime.now(UTC)
    cal = region.calendar
    local = cal.tz
    print(f"{region.code} ({region.timezone}); start {start.astimezone(local).isoformat()}")
    for field, value in policy.model_dump().items():
        print(f"  {field}: {value}")
    for name in ("triage_days", "acknowledge_days", "resolve_days", "dispute_days"):
        due = cal.add_working_days(start, getattr(policy, name))
        print(f"  {name.removesuffix('_days')} due: {due.astimezone(local).isoformat()}")
    return 0
