"""The maps in Debian's Chromium: with JavaScript the public reports page shows its
public reports as markers (clustered) and the form's map fills the pin fields; without
JavaScript the page is the list and the form files from the address alone. The tile
server is a closed local port: the pages must not depend on tiles."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from awasi.settings import Settings
from tests.support.intake import complaint
from tests.support.services import running_service

NO_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"


async def post(client: Any, **over: Any) -> str:
    r = await client.post("/api/v1/complaints", json=complaint(**over))
    assert r.status == 201
    return str((await r.json())["tracking_code"])


@pytest.mark.browser
@pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods")
async def test_reports_map_with_javascript_and_list_without(page: Any, settings: Settings,
                                                            browser: Any) -> None:
    s = settings.with_(rate_limit_per_minute=1000, map_tile_url=NO_TILES)
    async with running_service("intake", s) as c:
        codes = [await post(c, visibility="public", privacy="anonymous",
                            title=f"Jalan rusak {i}",
                            location={"lat": 3.59 + i / 1000, "lon": 98.67,
                                      "address": "Jl. Merdeka"}) for i in range(2)]
        codes.append(await post(c, visibility="public", privacy="anonymous", region="SRG",
                                title="Jalan rusak Sorong",
                                location={"lat": -0.8762, "lon": 131.2558}))
        await post(c, privacy="anonymous", title="Rahasia",
                   location={"lat": 3.595, "lon": 98.671})

        await page.goto(str(c.make_url("/reports")))
        the_map = page.locator("#reports-map")
        await expect(the_map).to_be_visible()
        await expect(the_map).to_have_attribute("data-markers", "3")  # no private one
        # Markers (or clusters of them) are drawn.
        await expect(page.locator("#reports-map .leaflet-marker-icon").first).to_be_visible()
        # The list is still there, under the map.
        await expect(page.locator("ol.reports > li")).to_have_count(3)
        # Zoomed in on Medan, the two reports there are single markers that link.
        await page.goto(str(c.make_url("/reports?region=MDN")))
        await expect(the_map).to_have_attribute("data-markers", "2")

        # The form: the map appears, a click fills the pin inside the chosen city.
        await page.goto(str(c.make_url("/?region=MDN")))
        pin = page.locator("#pin-map")
        await expect(pin).to_be_visible()
        box = await pin.bounding_box()
        assert box is not None
        # The map opens on the city's box: its middle is in the city.
        await pin.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
        lat = float(await page.locator("#lat").input_value())
        lon = float(await page.locator("#lon").input_value())
        assert 3.45 <= lat <= 3.82 and 98.55 <= lon <= 98.78
        await page.get_by_label("Kategori").select_option("jalan-rusak")
        await page.get_by_label("Apa yang terjadi?").fill(
            "Lampu jalan mati di depan masjid sejak sepekan.")
        await page.get_by_role("button", name="Kirim laporan").click()
        await page.wait_for_url(re.compile(r"/status/MDN-"))

        # Without JavaScript: no map, the list, and the form files from the address.
        context = await browser.new_context(java_script_enabled=False)
        try:
            tab = await context.new_page()
            await tab.goto(str(c.make_url("/reports")))
            assert not await tab.locator("#reports-map").is_visible()
            assert await tab.locator("ol.reports > li").count() == 3
            await tab.goto(str(c.make_url("/")))
            assert not await tab.locator("#pin-map").is_visible()
            await tab.get_by_label("Kota").select_option("SRG")
            await tab.get_by_role("button", name="Tampilkan kategori kota ini").click()
            await tab.get_by_label("Kategori").select_option("jalan-rusak")
            await tab.get_by_label("Apa yang terjadi?").fill(
                "Jalan berlubang di depan pasar Remu, motor terjatuh.")
            await tab.get_by_label("Lokasi").fill("Jl. Basuki Rahmat, Remu")
            await tab.get_by_role("button", name="Kirim laporan").click()
            await tab.wait_for_url(re.compile(r"/status/SRG-"))
        finally:
            await context.close()
