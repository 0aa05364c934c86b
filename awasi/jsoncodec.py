"""JSON for request bodies, responses, the database's jsonb and Kafka, with orjson.

orjson is several times faster than the standard library's encoder and decoder; on
intake's submission path JSON was about a tenth of the CPU (py-spy, bench/intake.py).
It also refuses what JSON does not allow (NaN, invalid UTF-8) instead of passing it on.
"""

from __future__ import annotations

from typing import Any

import orjson

# A subclass of json.JSONDecodeError (and so of ValueError).
JSONDecodeError = orjson.JSONDecodeError

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps_bytes(obj: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    return orjson.dumps(obj, option=_OPTIONS)


def dumps(obj: Any) -> str:
    """Compact JSON as text (for APIs that want ``str``, such as asyncpg's codecs)."""
    return orjson.dumps(obj, option=_OPTIONS).decode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises ``JSONDecodeError``."""
    return orjson.loads(data)
