"""Intake's errors. Each is an ``ApiError`` so the one error middleware renders it
as ``{"error": {"code", "message", "details"}}``; the web form catches them to show
the message next to the field instead."""

from __future__ import annotations

from awasi.web.errors import Conflict, Forbidden, NotFound, field_error

__all__ = ["IdempotencyKeyReused", "NotAllowedNow", "UnknownComplaint", "WrongSecret",
           "field_error"]


class UnknownComplaint(NotFound):
    """No complaint has this tracking code (or id)."""

    code = "unknown_complaint"


class WrongSecret(Forbidden):
    """The follow-up secret does not match the complaint's."""

    code = "wrong_secret"


class NotAllowedNow(Conflict):
    """The complaint is in a state where this action is not possible (e.g. rating an
    unresolved ticket, disputing after the dispute window closed, rating twice)."""

    code = "not_allowed_now"


class IdempotencyKeyReused(Conflict):
    """The ``Idempotency-Key`` was used before with a different request body."""

    code = "idempotency_key_reused"
