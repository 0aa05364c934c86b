"""The similar-reports lookup with pg_trgm, on Debian's PostgreSQL (which ships the
contrib modules; the embedded pgserver build the other tests use does not, so they
exercise the full-text fallback). A throwaway cluster as the ``postgres`` user, as
in TESTING.md: the migration creates the extension, the lookup ranks by trigram
similarity, and a pin close by raises the score."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from awasi.db import migrate_schema
from awasi.embedded import free_port
from services.intake import participation
from services.intake.app import migrations

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture
def debian_pg() -> Iterator[str]:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip("Debian's PostgreSQL 15 is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="awtrg-", dir="/tmp"))
    shutil.chown(tmp, "postgres")
    data, port = tmp / "data", free_port()

    def as_postgres(*cmd: str) -> None:
        # No pipes: the server pg_ctl starts would hold them open (it logs to -l).
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "--auth=trust")
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp}", "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


async def test_similar_reports_rank_by_trigram_similarity(debian_pg: str) -> None:
    conn = await asyncpg.connect(debian_pg)
    pool = await asyncpg.create_pool(debian_pg, min_size=1, max_size=2)
    try:
        await migrate_schema(conn, "intake", migrations())
        assert await participation.has_trigram(pool)
        now = datetime.now(UTC)
        texts = [("Jalan berlubang besar di depan SD Negeri 5, motor sering jatuh.", "public",
                  "assigned"),
                 ("Aspal jalan mengelupas dekat pasar ikan.", "public", "assigned"),
                 ("Jalan berlubang besar di depan SD Negeri 5, rahasia.", "private", "assigned"),
                 ("Jalan berlubang besar di depan SD Negeri 5, sudah selesai.", "public",
                  "closed")]
        for i, (text, vis, status) in enumerate(texts):
            await conn.execute(
                "INSERT INTO intake.complaints (id, tracking_code, region, category,"
                " description, privacy, channel, reporter_ref, secret_hash, status,"
                " submitted_at, updated_at, visibility, lat, lon) VALUES ($1, $2, 'MDN',"
                " 'jalan-rusak', $3, 'anonymous', 'web', $4, '\\x00', $5, $6, $6, $7,"
                " 3.59, 98.67)", uuid.uuid4(), f"MDN-AAAA-000{i}", text, f"rr{i}", status,
                now - timedelta(minutes=i), vis)
        query = "Ada lubang besar, jalan berlubang depan SD Negeri 5"
        rows = await participation.similar(pool, True, "MDN", "jalan-rusak", query)
        assert [r["tracking_code"] for r in rows] == ["MDN-AAAA-0000"]
        near = await participation.similar(pool, True, "MDN", "jalan-rusak", query,
                                           3.59, 98.67)
        assert near[0]["score"] > rows[0]["score"]
    finally:
        await pool.close()
        await conn.close()
