"""Opaque keyset-paging tokens (``?after=<token>``).

A page of a growing list starts strictly after the last row of the previous page,
by the list's sort keys, so a page costs one index range scan however deep it is
(``OFFSET`` reads and throws away every row before the page). The token carries the
sort it was made for and that row's key values as URL-safe base64 of JSON: not a
secret (anyone may read their own list's keys), only opaque so that clients do not
build it. A token that does not decode, was made for another sort, or carries
values of the wrong shape is a 422 naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from awasi.web.errors import ValidationFailed

MAX_TOKEN = 512


def encode(kind: str, values: Sequence[Any]) -> str:
    """A token for the row whose sort keys are ``values`` (JSON scalars), in list
    ``kind`` (the sort it was made for)."""
    raw = json.dumps([kind, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def invalid(param: str, why: str = "not a page token of this list") -> ValidationFailed:
    return ValidationFailed(f"Invalid {param}: {why}", details={"fields": [
        {"field": param, "message": why, "type": "value_error"}]})


def decode(token: str, kind: str, parse: Sequence[Callable[[Any], Any]],
           param: str = "after") -> tuple[Any, ...]:
    """The key values ``encode`` put in ``token``, each passed through its ``parse``
    function (which raises ``ValueError`` or ``TypeError`` for a wrong value).
    Raises ``ValidationFailed`` (422, naming ``param``) for anything else."""
    if not token or len(token) > MAX_TOKEN:
        raise invalid(param)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid(param) from None
    if not isinstance(data, list) or len(data) != len(parse) + 1 or data[0] != kind:
        raise invalid(param)
    try:
        return tuple(f(v) for f, v in zip(parse, data[1:], strict=True))
    except (ValueError, TypeError):
        raise invalid(param) from None
