"""Per-IP rate limit on submissions (``AWASI_RATE_LIMIT_PER_MINUTE``), with the
``limits`` package's sliding window counter in memory: each process counts its own clients,
so with N processes behind a balancer the effective limit is up to N times higher
(a shared storage such as Redis would fix that; not needed at a city's volume)."""

from __future__ import annotations

import math
import time

from aiohttp import web
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from awasi.web.errors import RateLimited


class SubmissionLimiter:
    def __init__(self, per_minute: int) -> None:
        self.item = RateLimitItemPerMinute(max(1, per_minute))
        # The synchronous storage: counting in memory takes microseconds, while the
        # asyncio variant hands every expiry sweep to a thread (a tenth of intake's
        # CPU under load, measured with py-spy). The sliding window counter keeps two
        # counters per address; the moving window kept one timestamp per hit and
        # inserted at the head of that list, O(limit) per request under a flood.
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def retry_after(self, request: web.Request) -> int | None:
        """Count one submission from the request's client; None if allowed, else the
        seconds to wait."""
        ip = request.remote or "unknown"
        if self.limiter.hit(self.item, "submit", ip):
            return None
        stats = self.limiter.get_window_stats(self.item, "submit", ip)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def check(self, request: web.Request) -> None:
        """Raise ``RateLimited`` (429 with ``Retry-After``) when over the limit."""
        wait = await self.retry_after(request)
        if wait is not None:
            raise RateLimited(
                f"Too many submissions from this address; try again in {wait} seconds",
                details={"retry_after_s": wait}, headers={"Retry-After": str(wait)})
