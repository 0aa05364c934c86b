"""Structured JSON logs, one object a line, carrying ``complaint_id`` and ``event_id``
from the context where they apply (set by consumers and request handlers) and the
``trace_id`` of the current OpenTelemetry span (awasi/tracing.py); or, for a
person at a terminal (``awasi dev``, ``AWASI_LOG_JSON=false``), one readable line with
the service's name in front and the same fields after the message."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

from awasi import tracing

_complaint_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "complaint_id", default=None
)
_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@contextlib.contextmanager
def event_context(complaint_id: str | None, event_id: str | None = None) -> Iterator[None]:
    t1 = _complaint_id.set(complaint_id)
    t2 = _event_id.set(event_id)
    try:
        yield
    finally:
        _complaint_id.reset(t1)
        _event_id.reset(t2)


def set_complaint(complaint_id: str | None) -> None:
    _complaint_id.set(complaint_id)


def _context_fields() -> dict[str, object]:
    """The complaint, event and trace the line belongs to, where there are some: the
    trace id next to the complaint id, so a line leads to the complaint's whole trace."""
    fields: dict[str, object] = {}
    if (cid := _complaint_id.get()) is not None:
        fields["complaint_id"] = cid
    if (tid := tracing.trace_id()) is not None:
        fields["trace_id"] = tid
    if (eid := _event_id.get()) is not None:
        fields["event_id"] = eid
    return fields


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(_context_fields())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:  # a traceback already formatted (and redacted: logredact)
            data["exc"] = record.exc_text
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``intake    09:15:02 INFO    awasi.events.relay: published  complaint_id=...``:
    the service first, so the three services' lines interleaved in one terminal stay
    apart; local time of day (the date is today's); context and extra fields last."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).astimezone().strftime("%H:%M:%S")
        line = (f"{self.service:<9} {when} {record.levelname:<7} {record.name}: "
                f"{record.getMessage()}")
        fields: dict[str, object] = _context_fields()
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                fields[key] = value
        if fields:
            line += "  " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


def configure(service: str, level: str = "INFO", json_output: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if json_output else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    # httpx logs every request's URL at INFO; the Telegram bot's carry its token
    # (redacted anyway by awasi.logredact) and are noise at that level.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
