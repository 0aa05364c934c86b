"""The oversight service's own errors."""

from __future__ import annotations

from awasi.web.errors import ValidationFailed


class OversightError(Exception):
    """Base of the oversight service's errors."""


class ChainBroken(OversightError):
    """The timeline's hash chain does not verify; ``seq`` names the first bad entry."""

    def __init__(self, seq: int | None, reason: str) -> None:
        super().__init__(f"entry {seq}: {reason}")
        self.seq = seq
        self.reason = reason


def field_error(name: str, message: str) -> ValidationFailed:
    """A 422 naming the field or query parameter ``name``."""
    return ValidationFailed(f"Invalid value for '{name}': {message}", details={
        "fields": [{"field": name, "message": message, "type": "value_error"}]})
