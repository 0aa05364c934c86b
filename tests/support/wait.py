"""The one polling helper of the suite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 20.0,
                     what: str = "condition", interval: float = 0.05) -> T:
    """Await ``check()`` until it returns something truthy and return that value.

    ``within`` is a hang guard, not a speed claim: under a loaded machine a condition
    may take long, so keep it generous. Raises ``AssertionError`` naming ``what`` (and
    the last value seen) once ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}"
                                 f" (last: {value!r})")
        await asyncio.sleep(interval)
