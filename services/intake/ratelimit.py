"""Rate limit on submissions, per device and per client address.

Carrier NAT puts thousands of phones behind a few public addresses, so a limit per
address alone would lock out a whole mobile network once a few citizens reported at
the same time. Two counters, both must allow a submission:

- per device (``AWASI_RATE_LIMIT_PER_MINUTE``): keyed on the signed device cookie
  (``services.intake.device``). A request without one (a first API call, a client
  that drops cookies) counts for the id it is given now *and* in one bucket per
  address that all cookie-less requests share, so dropping the cookie gains nothing;
- per address (``AWASI_RATE_LIMIT_PER_ADDRESS_PER_MINUTE``, higher): a ceiling on
  what one address can send however many device cookies it collects.

The address is the real client's (behind a trusted proxy, the forwarded one; see
awasi.web.proxies). Counting uses the ``limits`` package's sliding window counter in
memory: each process counts its own clients, so with N processes behind a balancer
the effective limit is up to N times higher (a shared storage such as Redis would
fix that; not needed at a city's volume).
"""

from __future__ import annotations

import math
import time

from aiohttp import web
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from awasi.web.errors import RateLimited
from services.intake.device import device_of


class SubmissionLimiter:
    def __init__(self, per_minute: int, per_address_per_minute: int | None = None) -> None:
        self.per_device = RateLimitItemPerMinute(max(1, per_minute))
        # The address ceiling is never below the device limit.
        self.per_address = RateLimitItemPerMinute(
            max(1, per_minute, per_address_per_minute or 0))
        # The synchronous storage: counting in memory takes microseconds, while the
        # asyncio variant hands every expiry sweep to a thread (a tenth of intake's
        # CPU under load, measured with py-spy). The sliding window counter keeps two
        # counters per key; the moving window kept one timestamp per hit and
        # inserted at the head of that list, O(limit) per request under a flood.
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def _wait(self, item: RateLimitItem, *key: str) -> int:
        stats = self.limiter.get_window_stats(item, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def retry_after(self, request: web.Request) -> int | None:
        """Count one submission from the request's device and address; None if
        allowed, else the seconds to wait. A submission refused per device is not
        counted against the address."""
        address = request.remote or "unknown"
        device, fresh = device_of(request)
        keys = [("device", device)]
        if fresh:
            keys.append(("nodevice", address))
        for key in keys:
            if not self.limiter.hit(self.per_device, "submit", *key):
                return self._wait(self.per_device, "submit", *key)
        if not self.limiter.hit(self.per_address, "submit", "address", address):
            return self._wait(self.per_address, "submit", "address", address)
        return None

    async def check(self, request: web.Request) -> None:
        """Raise ``RateLimited`` (429 with ``Retry-After``) when over a limit."""
        wait = await self.retry_after(request)
        if wait is not None:
            raise RateLimited(
                f"Too many submissions from this device or network; try again in {wait}"
                " seconds",
                details={"retry_after_s": wait}, headers={"Retry-After": str(wait)})
