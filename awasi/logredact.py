"""Secrets never reach a log: every log record, from any logger (ours, httpx,
httpcore, python-telegram-bot, aiohttp), is redacted when it is made.

Why a record factory and not a ``logging.Filter``: a filter on a logger sees only
records made by that very logger (not its children: ``httpx`` vs ``httpcore.http11``),
and a filter on a handler misses handlers added later (a test's, an operator's). The
factory runs for every record before any handler sees it.

Redacted: the formatted message (``msg % args``, formatted when the record is made,
while a secret is registered) and the formatted traceback. Not
covered: ``extra=`` fields, which logging adds after the factory; code that logs
through ``extra`` must not put a secret there.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import Counter
from typing import Any

REDACTED = "[REDACTED]"

_lock = threading.Lock()
_secrets: Counter[str] = Counter()
# A snapshot the factory reads without the lock (replaced whole, never mutated).
_active: tuple[str, ...] = ()
_previous: Any = None


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for s in secrets:
        text = text.replace(s, REDACTED)
    return text


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record: logging.LogRecord = _previous(*args, **kwargs)
    secrets = _active
    if not secrets:
        return record
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is logging's own error to report
        return record
    # Always frozen into text now: the arguments are live objects a library may still
    # change before a handler formats them (PTB logs getFile's result, then puts the
    # file URL, token included, into that very dict).
    record.msg, record.args = _redact(message, secrets), None
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if any(s in text for s in secrets):
            # The formatters print exc_text when there is no exc_info to format.
            record.exc_text, record.exc_info = _redact(text, secrets), None
    return record


def add_secret(secret: str) -> None:
    """Redact ``secret`` from every log record from now on (until ``remove_secret``).
    A Telegram token ``<id>:<key>`` also redacts its key alone (as in an encoded URL)."""
    parts = [secret]
    if ":" in secret:
        parts.append(secret.split(":", 1)[1])
    global _previous, _active  # noqa: PLW0603 - the process's one record factory
    with _lock:
        for p in parts:
            if len(p) >= 8:  # a short string would blank out ordinary words
                _secrets[p] += 1
        _active = tuple(_secrets)
        if _previous is None:
            _previous = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_factory)


def remove_secret(secret: str) -> None:
    """Undo one ``add_secret(secret)``; the factory stays installed (it is cheap)."""
    parts = [secret]
    if ":" in secret:
        parts.append(secret.split(":", 1)[1])
    global _active  # noqa: PLW0603
    with _lock:
        for p in parts:
            _secrets[p] -= 1
            if _secrets[p] <= 0:
                del _secrets[p]
        _active = tuple(_secrets)
