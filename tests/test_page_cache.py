"""The public dashboard renders once per set of figures and language
(awasi/web/page_cache.py), and a change of its figures shows at once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from awasi.catalog import load_catalog
from awasi.settings import Settings
from awasi.web import keys as web_keys
from awasi.web.page_cache import PageCache, digest
from services.oversight import keys, stats
from tests.support.services import running_service
from tests.support.wait import eventually


def test_the_cache_keeps_the_most_recent_pages() -> None:
    cache = PageCache(size=2)
    renders: list[str] = []

    def page(text: str) -> str:
        renders.append(text)
        return text

    assert cache.get_or_render(digest("a"), lambda: page("A")) == "A"
    assert cache.get_or_render(digest("a"), lambda: page("other")) == "A"
    assert cache.get_or_render(digest("b"), lambda: page("B")) == "B"
    assert cache.get_or_render(digest("c"), lambda: page("C")) == "C"  # "a" goes
    assert cache.get_or_render(digest("a"), lambda: page("A2")) == "A2"
    assert renders == ["A", "B", "C", "A2"]
    assert (cache.hits, cache.misses) == (1, 4)
    # Data of another shape or value is another key.
    assert digest({"n": 1}) != digest({"n": 2}) != digest([1])
    assert digest(datetime(2026, 1, 1, tzinfo=UTC)) == digest(datetime(2026, 1, 1, tzinfo=UTC))


async def test_the_dashboard_renders_again_only_when_its_figures_change(
        settings: Settings) -> None:
    # The snapshot only when this test stores it (the tests' default refreshes it
    # every 0.2 s, and each refresh is new figures: a new page).
    settings = dataclasses.replace(settings, stats_refresh_s=3600.0)
    async with running_service("oversight", settings) as client:
        pages = client.server.app[keys.PAGES]

        async def dashboard(lang: str = "id") -> str:
            r = await client.get("/", headers={"Accept-Language": lang})
            assert r.status == 200
            return await r.text()

        # Soon after it starts the service signs its first checkpoint and its
        # scheduler stores the first snapshot: the page changes with each (that is
        # the point), so start from after both.
        pool = client.server.app[web_keys.POOL]

        async def checkpointed() -> str | None:
            refreshed = await pool.fetchval(
                "SELECT next_at > now() + interval '1000 seconds' FROM oversight.jobs"
                " WHERE name = $1", stats.SNAPSHOT_JOB)
            page = await dashboard()
            return page if refreshed and "Titik periksa terakhir" in page else None

        first = await eventually(checkpointed)
        misses = pages.misses
        assert await dashboard() == first
        assert pages.misses == misses and pages.hits >= 1
        english = await dashboard("en")
        assert english != first and pages.misses == misses + 1
        # A new snapshot (the scheduler refreshes it): its time shows on the page.
        async with pool.acquire() as conn:
            await stats.store_snapshot(conn, load_catalog(settings.catalog),
                                       datetime(2031, 5, 17, 3, 0, tzinfo=UTC))
        fresh = await dashboard()
        assert fresh != first and pages.misses == misses + 2
        assert "17" in fresh and "2031" in fresh and "2031" not in first
