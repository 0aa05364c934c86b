"""What the queue long-polls remember between requests (see ``api.list_tickets``)."""

from __future__ import annotations

from awasi.db.listen import Version
from services.router.db import Filters

QueueKey = tuple[str, Filters]  # (agency, filters)


class KnownTags:
    """The ETag each queue (agency and filters) had at a change version of the agency,
    so a long-poll that comes back with the ETag it was just given waits without
    reading the list again (at 50 new tickets a second that read is most of the cost).
    Entries are trusted for a second only: ``overdue`` moves with the clock."""

    MAX_ENTRIES = 1024
    TRUST_S = 1.0

    def __init__(self) -> None:
        self._tags: dict[QueueKey, tuple[Version, str, float]] = {}

    def get(self, key: QueueKey, version: Version, at: float) -> str | None:
        hit = self._tags.get(key)
        if hit is None or hit[0] != version or at - hit[2] > self.TRUST_S:
            return None
        return hit[1]

    def put(self, key: QueueKey, version: Version, tag: str, at: float) -> None:
        if len(self._tags) >= self.MAX_ENTRIES:
            self._tags.clear()  # filters come from clients: keep the memory bounded
        self._tags[key] = (version, tag, at)
