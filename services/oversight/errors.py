"""The oversight service's own errors."""

from __future__ import annotations


class OversightError(Exception):
    """Base of the oversight service's errors."""


class ChainBroken(OversightError):
    """The timeline's hash chain does not verify; ``seq`` names the first bad entry."""

    def __init__(self, seq: int | None, reason: str) -> None:
        super().__init__(f"entry {seq}: {reason}")
        self.seq = seq
        self.reason = reason
