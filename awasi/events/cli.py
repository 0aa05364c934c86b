"""``awasi events schema``: write the AsyncAPI document of the event stream
(``awasi.events.asyncapi``), all topics or one service's."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from awasi.settings import Settings

DOCUMENT = Path("docs") / "asyncapi.yaml"


def register(subparsers: Any) -> None:
    events = subparsers.add_parser("events", help="the event stream")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    schema = events_sub.add_parser(
        "schema", help=f"write the AsyncAPI 3 document generated from the event models "
        f"(check it in as {DOCUMENT})")
    schema.add_argument("-o", "--output", default="-",
                        help=f"file to write, or - for standard output (default); "
                        f"the repository's copy is {DOCUMENT}")
    schema.add_argument("--service", choices=("intake", "router", "oversight"),
                        help="only the topics this service writes")
    schema.set_defaults(func=cmd_events_schema)


def cmd_events_schema(settings: Settings, args: argparse.Namespace) -> int:
    from awasi.events.asyncapi import build, to_yaml

    text = to_yaml(build(args.service))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
