"""Argon2 hashing and verification on a small thread pool of their own.

Argon2id is deliberately slow and memory-hard (argon2-cffi's default: 64 MiB and
tens of milliseconds per hash). On asyncio's default executor (sized by the CPU
count, up to 32 threads) a burst of logins would run that many at once: memory
spikes and every other thread-pool user waits. Here at most
``AWASI_PASSWORD_HASH_WORKERS`` run at once; the rest queue (a queued check holds
no database connection: the throttle has answered before it)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHER = PasswordHasher()  # stateless parameters object, safe to share
# Verifying against this hash for unknown users makes "unknown user" cost as much
# time as "wrong password", so timing does not reveal which usernames exist.
DUMMY_HASH = HASHER.hash("awasi-dummy-password")


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


class PasswordWorkers:
    """A bounded pool for Argon2. Open for the app's lifetime; ``close()`` at the end."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers),
                                        thread_name_prefix="argon2")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, HASHER.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        """Whether ``password`` matches ``hashed``; with ``None`` (no such user) the
        dummy hash is checked, so it takes as long, and False is returned."""
        ok = await asyncio.get_running_loop().run_in_executor(
            self._pool, _verify, hashed or DUMMY_HASH, password)
        return ok and hashed is not None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
