"""Participation on public reports: support ("saya juga mengalami", me too) and the
similar reports offered to a citizen about to file.

Support
  Anyone may support a public report that is still open (not withdrawn or closed),
  once per supporter: a device (the signed cookie of ``device.py``) or a Telegram
  user. No account is needed and nothing about the supporter is kept: the
  ``supports`` row holds an HMAC of ``"<kind>:<id>"`` under the server key, which
  dedupes without being a usable identifier. The count lives on the complaint row
  (the public list reads it with the report, no COUNT per page), and each new
  support writes ``complaint.supported`` (the new total, nothing else) to the
  outbox in the same transaction, so the router shows it on the agency's ticket.

  A private, withdrawn, closed or unknown report answers 404 the same way: support
  never reveals that a private report exists.

Similar reports
  ``similar()`` offers up to five open public reports of the same region and
  category that read alike, among the newest ``SIMILAR_CANDIDATES`` of them (a
  bounded cost): trigram similarity (pg_trgm) where the server has the extension,
  else PostgreSQL's full-text ranking (the embedded pgserver build ships no contrib
  modules); closer reports rank higher when both have a location.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from awasi import similarity
from awasi.catalog import Catalog
from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import ComplaintSupported
from awasi.web.errors import RateLimited
from services.intake import domain, visibility
from services.intake.errors import UnknownComplaint, field_error

SupportChannel = Literal["web", "api", "telegram"]
SIMILAR_LIMIT = 5
# How many of the newest open public reports of the region and category are compared.
SIMILAR_CANDIDATES = 500
# Beyond this, a location adds nothing to the ranking (a different neighbourhood).
SIMILAR_RADIUS_KM = similarity.RADIUS_KM


def supporter_key(secret_key: str, kind: Literal["device", "telegram"], ident: str) -> bytes:
    """The stored, non-reversible key of a supporter (HMAC-SHA256 under the server key)."""
    return hmac.new(secret_key.encode(), f"support|{kind}:{ident}".encode(),
                    hashlib.sha256).digest()


def supportable(row: asyncpg.Record | None) -> bool:
    """Public and still open: the only reports that take supports."""
    return (row is not None and row["visibility"] == "public"
            and row["status"] not in domain.TERMINAL_STATUSES)


@dataclass(frozen=True, slots=True)
class SupportResult:
    tracking_code: str
    support_count: int
    counted: bool  # False: this supporter had supported it already


async def support(pool: asyncpg.Pool, code: str, supporter: bytes, channel: SupportChannel,
                  now: datetime | None = None) -> SupportResult:
    """Count one support of the public report ``code`` by ``supporter`` (see
    ``supporter_key``). A second support by the same supporter changes nothing and
    answers ``counted=False``. Raises ``UnknownComplaint`` (404) for an unknown,
    private, withdrawn or closed report, alike."""
    now = now or datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        # The row lock orders concurrent supports of one report, so each event
        # carries a distinct, increasing total.
        row = await conn.fetchrow(
            "SELECT id, tracking_code, visibility, status, support_count"
            " FROM intake.complaints WHERE tracking_code = $1 FOR UPDATE",
            domain.normalize_code(code))
        if not supportable(row):
            raise UnknownComplaint("No public report open to support has this tracking code")
        assert row is not None
        inserted = await conn.fetchval(
            "INSERT INTO intake.supports (complaint_id, supporter, channel, created_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
            row["id"], supporter, channel, now)
        if inserted is None:
            return SupportResult(row["tracking_code"], row["support_count"], False)
        count = row["support_count"] + 1
        # Not ``update_complaint``: a support is not a change of the case, so
        # ``updated_at`` (shown as "last change") stays.
        await conn.execute("UPDATE intake.complaints SET support_count = $2 WHERE id = $1",
                           row["id"], count)
        await add_to_outbox(conn, domain.SCHEMA, topics.INTAKE, Envelope.build(
            ComplaintSupported(support_count=count), complaint_id=str(row["id"]),
            producer=domain.PRODUCER, occurred_at=now))
    return SupportResult(row["tracking_code"], count, True)


async def has_supported(pool: asyncpg.Pool, code: str, supporter: bytes) -> bool:
    return bool(await pool.fetchval(
        "SELECT 1 FROM intake.supports s JOIN intake.complaints c ON c.id = s.complaint_id"
        " WHERE c.tracking_code = $1 AND s.supporter = $2", code, supporter))


class SupportLimiter:
    """Supports per supporter (device or Telegram user) and, more generously, per
    client address: the first stops one person tapping away, the second bounds what
    a client that throws its device cookie away every time can do. Keyed on the
    supporter first, never on the address alone (many people share a carrier's
    address). In memory per process, like ``ratelimit.SubmissionLimiter``."""

    def __init__(self, per_supporter_per_minute: int, per_address_per_minute: int) -> None:
        self.supporter_item = RateLimitItemPerMinute(max(1, per_supporter_per_minute))
        self.address_item = RateLimitItemPerMinute(max(1, per_address_per_minute))
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def check(self, supporter: bytes, address: str | None) -> None:
        """Count one attempt; raise ``RateLimited`` (429 with ``Retry-After``) when
        either limit is exceeded."""
        checks = [(self.supporter_item, "supporter", supporter.hex())]
        if address is not None:
            checks.append((self.address_item, "address", address))
        for item, scope, key in checks:
            if not self.limiter.hit(item, "support", scope, key):
                stats = self.limiter.get_window_stats(item, "support", scope, key)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(f"Too many supports; try again in {wait} seconds",
                                  details={"retry_after_s": wait},
                                  headers={"Retry-After": str(wait)})


# --- similar reports ---------------------------------------------------------------------

DOC = similarity.DOC
# Kept under their old names: the bench and tests call them here.
search_terms = similarity.search_terms
has_trigram = similarity.has_trigram


def similar_sql(trigram: bool, with_location: bool) -> str:
    """The one statement of a lookup. Parameters: $1 region, $2 category, $3 the text
    (trigram) or the tsquery (full text), $4 open statuses, $5 limit, $6 the number
    of candidates, then $7 lat and $8 lon when ``with_location``.

    The candidates are the newest ``$6`` open public reports of the region and
    category (one range scan of ``complaints_public_region_category``); only they
    are scored (``awasi.similarity``, the rule the router's duplicates share), so
    the cost does not grow with the history."""
    f = similarity.fragments(DOC, "$3", trigram, ("$7", "$8") if with_location else None)
    return (f"WITH candidates AS (SELECT {visibility.PUBLIC_COLUMNS} FROM intake.complaints"
            f" WHERE visibility = 'public' AND region = $1 AND category = $2"
            f" AND status = ANY($4::text[]) ORDER BY submitted_at DESC LIMIT $6),"
            f" scored AS (SELECT c.*, {f.score} AS text_score FROM candidates c,"
            f" LATERAL (SELECT {f.doc}) d WHERE {f.match})"
            f" SELECT *, text_score{f.near} AS score FROM scored"
            f" ORDER BY score DESC, submitted_at DESC LIMIT $5")


async def similar(pool: asyncpg.Pool, trigram: bool, region: str, category: str, text: str,
                  lat: float | None = None, lon: float | None = None,
                  limit: int = SIMILAR_LIMIT) -> list[asyncpg.Record]:
    """Up to ``limit`` open public reports of ``region`` and ``category`` that read
    like ``text``, best first (closer first among equals when ``lat``/``lon`` given)."""
    terms = search_terms(text)
    if not terms:
        return []
    query: Any = similarity.query_text(terms, trigram)
    with_location = lat is not None and lon is not None
    args: list[Any] = [region, category, query, list(domain.OPEN_STATUSES), limit,
                       SIMILAR_CANDIDATES]
    if with_location:
        args += [lat, lon]
    return list(await pool.fetch(similar_sql(trigram, with_location), *args))


def check_similar_input(catalog: Catalog, region: str | None, category: str | None) -> None:
    """Raise a 422 naming ``region`` or ``category`` unless both are known and the
    category is offered in the region."""
    if not region or region not in catalog.regions:
        raise field_error("region", f"unknown region {region!r}", "unknown_code")
    if not category or category not in {c.code for c in catalog.categories_for(region)}:
        raise field_error("category", f"unknown category {category!r} in region {region}",
                          "unknown_code")
