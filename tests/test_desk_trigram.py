"""The desk search with pg_trgm, on Debian's PostgreSQL (the embedded pgserver build
has no contrib modules, so the other tests exercise the prefix-only search): the
router's migrations add the extension and its index, and a word then also matches
inside another word, while the agency filter still applies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from awasi import textsearch
from awasi.db import migrate_schema
from services.router import db
from services.router.app import migrations
from tests.test_participation_trigram import debian_pg  # noqa: F401 - the cluster fixture


async def test_search_matches_inside_words_with_pg_trgm(debian_pg: str) -> None:  # noqa: F811
    conn = await asyncpg.connect(debian_pg)
    pool = await asyncpg.create_pool(debian_pg, min_size=1, max_size=2)
    try:
        await migrate_schema(conn, "router", migrations())
        assert await db.has_trigram(pool)
        assert await conn.fetchval(
            "SELECT 1 FROM pg_indexes WHERE indexname = 'tickets_text_trgm'")
        now = datetime.now(UTC)
        for i, (agency, text) in enumerate([
                ("MDN-PUPR", "Jalan berlubang di depan sekolah."),
                ("MDN-PUPR", "Lampu jalan mati."),
                ("MDN-DLH", "Selokan berlubang dan bau.")]):
            await conn.execute(
                "INSERT INTO router.tickets (id, complaint_id, tracking_code, region, category,"
                " description, privacy, reporter_ref, channel, submitted_at, status, agency,"
                " rule, created_at) VALUES ($1, $2, $3, 'MDN', 'jalan-rusak', $4, 'anonymous',"
                " 'r', 'api', $5, 'assigned', $6, 'test', $5)",
                uuid.uuid4(), f"c{i}", f"AWS-T{i}", text, now - timedelta(minutes=i), agency)

        async def found(words: str, trigram: bool, agency: str = "MDN-PUPR") -> list[str]:
            f = db.Filters(q=textsearch.prefix_query(words),
                           like=textsearch.like_patterns(words) if trigram else None)
            return [r["tracking_code"] for r in await db.list_tickets(pool, now, f,
                                                                      agency=agency)]

        # "lubang" is inside "berlubang": only pg_trgm's LIKE finds it.
        assert await found("lubang", trigram=False) == []
        assert await found("lubang", trigram=True) == ["AWS-T0"]
        assert await found("lubang", trigram=True, agency="MDN-DLH") == ["AWS-T2"]
        # Prefixes still match either way; every word must match.
        assert await found("jal", trigram=True) == ["AWS-T0", "AWS-T1"]
        assert await found("jal mati", trigram=True) == ["AWS-T1"]
        n, exact = await db.count_tickets(pool, now, db.Filters(
            q=textsearch.prefix_query("lubang"), like=textsearch.like_patterns("lubang")),
            agency="MDN-PUPR")
        assert (n, exact) == (1, True)
    finally:
        await pool.close()
        await conn.close()
