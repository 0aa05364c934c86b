"""The satisfaction survey end to end: service units in the catalog and on intake's
API, answers by the JSON API and by the web page (Chromium, with and without
JavaScript), bad input, one counted answer per device and period, the rate limit per
device, and the event path intake -> broker -> oversight into the rollups that
``GET /api/v1/satisfaction`` reads (period boundaries in WIB and WIT)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from awasi import ikm
from awasi.catalog import CatalogError, parse_catalog
from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.payloads import SurveyResponseSubmitted
from awasi.settings import Settings
from awasi.web import keys as web_keys
from services.oversight.app import create_app as create_oversight
from services.oversight.clock import ManualClock
from tests.support.kafka import publish
from tests.support.oversight import eventually
from tests.support.services import running_app, running_service

pytestmark = [
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]

UNIT = "MDN-PKM-PADANGBULAN"   # Puskesmas Padang Bulan (Dinas Kesehatan, Medan)
ALL_THREE = {f"U{i}": 3 for i in range(1, 10)}


def answers(*values: int) -> dict[str, int]:
    return dict(zip(ikm.ELEMENTS, values, strict=True))


@contextlib.asynccontextmanager
async def session(client: TestClient) -> AsyncIterator[aiohttp.ClientSession]:
    """Another phone on the same server: its own cookie jar, so its own device."""
    async with aiohttp.ClientSession(base_url=str(client.make_url("/")),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        yield s


async def rows(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


# --- the catalog ---------------------------------------------------------------------

BASE = """
categories:
  - {code: lainnya, name_id: Lainnya, name_en: Other, group: service, resolution_class: light}
regions:
  - {code: MDN, name: Medan, timezone: Asia/Jakarta}
agencies:
  - {code: MDN-DINKES, region: MDN, name: Dinas Kesehatan, short_name: Dinkes}
  - {code: MDN-PUPR, region: MDN, name: Dinas PUPR, short_name: PUPR}
"""


def test_units_in_the_catalog_and_agencies_without_units() -> None:
    catalog = parse_catalog(BASE + """units:
  - {code: MDN-PKM-A, agency: MDN-DINKES, name: Puskesmas A, population: 1000}
  - {code: MDN-PKM-B, agency: MDN-DINKES, name: Puskesmas B}
""")
    assert [u.code for u in catalog.units_in("MDN")] == ["MDN-PKM-A", "MDN-PKM-B", "MDN-PUPR"]
    assert catalog.unit("MDN-PKM-A").population == 1000
    # An agency that lists no unit is a unit itself.
    assert catalog.unit("MDN-PUPR").name == "Dinas PUPR"
    assert catalog.region_of_unit("MDN-PKM-B").code == "MDN"


@pytest.mark.parametrize(("units", "line", "message"), [
    ("  - {code: MDN-X, agency: MDN-NOPE, name: X}\n", 10, "units[0].agency: unknown agency"),
    ("  - {code: MDN-X, agency: MDN-DINKES, name: X}\n"
     "  - {code: MDN-X, agency: MDN-DINKES, name: Y}\n", 11, "duplicate unit code 'MDN-X'"),
    ("  - {code: MDN-PUPR, agency: MDN-DINKES, name: X}\n", 10, "another agency"),
    ("  - {code: MDN-X, agency: MDN-DINKES, name: X, population: 0}\n", 10,
     "units[0].population"),
])
def test_bad_units_name_the_line(units: str, line: int, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(BASE + "units:\n" + units, "city.yaml")
    assert f"city.yaml:{line}:" in str(info.value)
    assert message in str(info.value)


# --- intake's API --------------------------------------------------------------------

async def test_survey_units_api(settings: Settings) -> None:
    async with running_service("intake", settings) as client:
        r = await client.get("/api/v1/survey-units", params={"region": "SRG"})
        assert r.status == 200
        units = await r.json()
        assert {u["code"] for u in units} >= {"SRG-PKM-REMU", "SRG-DISDUKCAPIL-LOKET",
                                               "SRG-PUPR"}
        assert all(u["code"].startswith("SRG-") for u in units)
        remu = next(u for u in units if u["code"] == "SRG-PKM-REMU")
        assert remu == {"code": "SRG-PKM-REMU", "name": "Puskesmas Remu",
                        "agency": "SRG-DINKES", "region": "SRG", "population": 1500}
        r = await client.get("/api/v1/survey-units", params={"region": "XXX"})
        assert r.status == 422
        assert (await r.json())["error"]["details"]["fields"][0]["field"] == "region"


@pytest.mark.parametrize(("unit", "body", "field"), [
    (UNIT, {"answers": {k: v for k, v in ALL_THREE.items() if k != "U3"}}, "answers.U3"),
    (UNIT, {"answers": {**ALL_THREE, "U7": 5}}, "answers.U7"),
    (UNIT, {"answers": {**ALL_THREE, "U1": 0}}, "answers.U1"),
    (UNIT, {"answers": {**ALL_THREE, "U2": "3"}}, "answers.U2"),
    (UNIT, {"answers": {**ALL_THREE, "U10": 3}}, "answers.U10"),
    (UNIT, {"answers": ALL_THREE, "respondent": {"sex": "X"}}, "respondent.sex"),
    (UNIT, {"answers": ALL_THREE, "comment": "x" * 1001}, "comment"),
    (UNIT, {}, "answers"),
    ("MDN-NOPE", {"answers": ALL_THREE}, "unit"),
])
async def test_bad_answers_are_422_naming_the_field_and_write_nothing(
        settings: Settings, unit: str, body: dict[str, Any], field: str) -> None:
    async with running_service("intake", settings) as client:
        r = await client.post(f"/api/v1/surveys/{unit}/responses", json=body)
        assert r.status == 422, await r.text()
        error = (await r.json())["error"]
        assert error["code"] == "validation_failed"
        assert field in [f["field"] for f in error["details"]["fields"]]
    assert await rows(settings, "SELECT 1 FROM intake.survey_responses") == []
    assert await rows(settings, "SELECT 1 FROM intake.outbox") == []


async def test_one_counted_answer_per_device_duplicates_are_recorded(
        settings: Settings) -> None:
    async with running_service("intake", settings) as client:
        body = {"answers": answers(4, 4, 3, 4, 3, 3, 4, 2, 3),
                "respondent": {"age_group": "30-39", "sex": "P", "education": "s1",
                               "occupation": "swasta"},
                "comment": "Antrean cukup cepat."}
        first = await client.post(f"/api/v1/surveys/{UNIT}/responses", json=body)
        assert first.status == 201, await first.text()
        receipt = await first.json()
        assert receipt["counted"] is True and receipt["unit"] == UNIT
        # The same phone again (its device cookie) in the same quarter: recorded as a
        # duplicate, not counted.
        again = await client.post(f"/api/v1/surveys/{UNIT}/responses", json=body)
        assert again.status == 201
        assert (await again.json())["counted"] is False
        # The same phone at another unit counts there.
        other = await client.post("/api/v1/surveys/MDN-PKM-SUNGGAL/responses", json=body)
        assert (await other.json())["counted"] is True
        # Another phone at the first unit counts.
        async with session(client) as phone:
            r = await phone.post(f"/api/v1/surveys/{UNIT}/responses", json=body)
            assert (await r.json())["counted"] is True
    stored = await rows(settings, "SELECT unit, duplicate, period, sex, comment, answers"
                        " FROM intake.survey_responses ORDER BY submitted_at")
    assert [(r["unit"], r["duplicate"]) for r in stored] == [
        (UNIT, False), (UNIT, True), ("MDN-PKM-SUNGGAL", False), (UNIT, False)]
    assert stored[0]["period"] == receipt["period"]
    assert stored[0]["answers"] == [4, 4, 3, 4, 3, 3, 4, 2, 3]
    # The events: answers only, nothing about the respondent, the duplicate flagged.
    events = [json.loads(r["envelope"]) for r in await rows(
        settings, "SELECT envelope FROM intake.outbox ORDER BY id")]
    assert [e["type"] for e in events] == ["survey.response_submitted"] * 4
    assert [e["payload"]["duplicate"] for e in events] == [False, True, False, False]
    for e in events:
        assert set(e["payload"]) == {"unit", "agency", "region", "answers", "channel",
                                     "duplicate", "submitted_at"}
        text = str(e)
        assert "swasta" not in text and "Antrean" not in text and "30-39" not in text


async def test_rate_limit_is_per_device_not_per_address(settings: Settings) -> None:
    async with running_service("intake", settings.with_(survey_rate_limit_per_minute=2)) \
            as client:
        units = ["MDN-PKM-SUNGGAL", "MDN-DISDUKCAPIL-LOKET", "MDN-DISDUKCAPIL-MPP"]
        async with session(client) as a, session(client) as b:
            for unit in units[:2]:
                r = await a.post(f"/api/v1/surveys/{unit}/responses",
                                 json={"answers": ALL_THREE})
                assert r.status == 201
            r = await a.post(f"/api/v1/surveys/{units[2]}/responses",
                             json={"answers": ALL_THREE})
            assert r.status == 429
            assert int(r.headers["Retry-After"]) >= 1
            assert (await r.json())["error"]["code"] == "rate_limited"
            # Another phone behind the same address still gets through.
            r = await b.post(f"/api/v1/surveys/{units[2]}/responses",
                             json={"answers": ALL_THREE})
            assert r.status == 201, await r.text()
    assert len(await rows(settings, "SELECT 1 FROM intake.survey_responses")) == 3


# --- through the broker to oversight -------------------------------------------------

async def test_answers_reach_oversights_results_through_the_broker(settings: Settings) -> None:
    sheets = [
        answers(3, 4, 1, 4, 3, 3, 4, 2, 3),
        answers(3, 4, 2, 4, 3, 4, 4, 2, 3),
        answers(4, 4, 2, 4, 3, 3, 4, 3, 3),
        answers(2, 4, 2, 4, 3, 4, 3, 3, 2),
        answers(3, 3, 3, 3, 3, 3, 3, 3, 3),
    ]
    # By hand: sums 15, 19, 10, 19, 15, 17, 18, 13, 14 over 5 respondents; means add
    # up to 140 / 5 = 28; 28 / 9 x 25 = 77.777... -> 77.78, grade B.
    clock = ManualClock(datetime.now(UTC))
    async with running_service("intake", settings.with_(survey_rate_limit_per_minute=100)) \
            as intake, running_app(create_oversight(settings, clock=clock)) as oversight:
        period = None
        for sheet in sheets:
            async with session(intake) as phone:
                r = await phone.post(f"/api/v1/surveys/{UNIT}/responses",
                                     json={"answers": sheet})
                assert r.status == 201
                period = (await r.json())["period"]
        # A duplicate from the last phone is counted apart.
        r = await intake.post(f"/api/v1/surveys/{UNIT}/responses", json={"answers": ALL_THREE})
        r = await intake.post(f"/api/v1/surveys/{UNIT}/responses", json={"answers": ALL_THREE})
        assert (await r.json())["counted"] is False
        pool = oversight.server.app[web_keys.POOL]
        await eventually(lambda: pool.fetchval(
            "SELECT sum(responses) = 6 AND sum(duplicates) = 1 FROM oversight.survey_daily"),
            what="rollups")
        r = await oversight.get("/api/v1/satisfaction",
                                params={"region": "MDN", "period": period})
        assert r.status == 200, await r.text()
        out = await r.json()
        # The public dashboard shows the agency's index, flagged as not yet reliable.
        r = await oversight.get("/", params={"region": "MDN", "period": period})
        html = await r.text()
        row = html.split('<tr data-agency="MDN-DINKES"><td>Dinas Kesehatan', 2)[-1]
        row = row.split("</tr>", 1)[0]
        expected_text = str(ikm.from_answers([*sheets, ALL_THREE]).index)
        assert expected_text in row and "belum andal" in row, row
        assert "Indeks Kepuasan Masyarakat (IKM)" in html
        r = await oversight.get("/", params={"region": "NOPE"})
        assert r.status == 200
        assert "tidak dikenal" in await r.text()
    unit = next(u for u in out["units"] if u["code"] == UNIT)
    expected = ikm.from_answers([*sheets, ALL_THREE])
    assert unit["respondents"] == 6 and unit["duplicates"] == 1
    assert Decimal(str(unit["index"])) == expected.index
    assert unit["grade"] == expected.grade.letter  # type: ignore[union-attr]
    assert unit["elements"]["U3"] == round(float(expected.means["U3"]), 4)
    # Population 3,000: the sample needs 341; six is not yet reliable.
    assert unit["required_sample"] == ikm.krejcie_morgan(3000) == 341
    assert unit["reliable"] is False and unit["hidden"] is False
    agency = next(a for a in out["agencies"] if a["code"] == "MDN-DINKES")
    assert agency["respondents"] == 6 and agency["index"] == unit["index"]
    assert out["region"]["respondents"] == 6
    # Units below the floor show counts, never an index.
    empty = next(u for u in out["units"] if u["code"] == "MDN-PKM-SUNGGAL")
    assert empty["respondents"] == 0 and empty["index"] is None and empty["hidden"] is True
    # The hand-computed figure of the first five alone.
    assert ikm.from_answers(sheets).index == Decimal("77.78")


async def test_period_boundaries_follow_the_regions_time_zone(settings: Settings) -> None:
    # 30 Sept 2026 16:30 UTC: 23:30 WIB in Medan (Q3), 01:30 WIT in Sorong (Q4).
    at = datetime(2026, 9, 30, 16, 30, tzinfo=UTC)
    clock = ManualClock(at)
    async with running_app(create_oversight(settings, clock=clock)) as oversight:
        assert settings.kafka_bootstrap
        for unit, agency, region in (("MDN-PKM-SUNGGAL", "MDN-DINKES", "MDN"),
                                     ("SRG-PKM-REMU", "SRG-DINKES", "SRG")):
            for _ in range(5):
                env = Envelope.build(SurveyResponseSubmitted(
                    unit=unit, agency=agency, region=region, answers=ALL_THREE,
                    channel="web", submitted_at=at), complaint_id=str(uuid.uuid4()),
                    producer="intake", occurred_at=at)
                await publish(settings.kafka_bootstrap, topics.INTAKE, env.to_bytes(),
                              key=env.complaint_id.encode())
        pool = oversight.server.app[web_keys.POOL]
        await eventually(lambda: pool.fetchval(
            "SELECT sum(responses) = 10 FROM oversight.survey_daily"), what="rollups")

        async def respondents(region: str, period: str) -> int:
            r = await oversight.get("/api/v1/satisfaction",
                                    params={"region": region, "period": period})
            assert r.status == 200
            return int((await r.json())["region"]["respondents"])

        assert await respondents("MDN", "2026-Q3") == 5
        assert await respondents("MDN", "2026-Q4") == 0
        assert await respondents("SRG", "2026-Q3") == 0
        assert await respondents("SRG", "2026-Q4") == 5
        assert await respondents("SRG", "2026-H2") == 5
        assert await respondents("MDN", "2026") == 5
        r = await oversight.get("/api/v1/satisfaction", params={"region": "SRG",
                                                                "period": "2026-Q4"})
        out = await r.json()
        assert out["period"] == {"code": "2026-Q4", "first_day": "2026-10-01",
                                 "last_day": "2026-12-31", "timezone": "Asia/Jayapura"}
        assert out["region"]["index"] == 75.0 and out["region"]["grade"] == "C"
        # Survey answers are not cases: nothing on the case chain.
        assert await pool.fetchval("SELECT count(*) FROM oversight.cases") == 0
        for params, field in (({"period": "2026-Q4"}, "region"),
                              ({"region": "XXX"}, "region"),
                              ({"region": "MDN", "period": "2026-Q5"}, "period")):
            r = await oversight.get("/api/v1/satisfaction", params=params)
            assert r.status == 422
            assert (await r.json())["error"]["details"]["fields"][0]["field"] == field


# --- the web page, in Chromium --------------------------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("javascript", [False, True])
async def test_survey_page_in_chromium(browser: Browser, settings: Settings,
                                       javascript: bool) -> None:
    async with running_service("intake", settings) as client:
        base = str(client.make_url("/")).rstrip("/")
        context = await browser.new_context(java_script_enabled=javascript,
                                            viewport={"width": 360, "height": 740})
        try:
            page = await context.new_page()
            await page.goto(f"{base}/survey/{UNIT}")
            await expect(page.get_by_role("heading", level=1)).to_have_text(
                "Survei kepuasan masyarakat")
            await expect(page.get_by_text("Puskesmas Padang Bulan")).to_be_visible()
            # The regulation's wording, in order.
            legends = await page.locator("fieldset legend").all_inner_texts()
            assert legends[0].startswith("1. Bagaimana pendapat Saudara tentang kesesuaian "
                                         "persyaratan")
            assert "U9" in legends[8]
            # Leave U5 out: the page comes back with the other answers kept.
            chosen = {"U1": "Sangat sesuai", "U2": "Mudah", "U3": "Cepat", "U4": "Gratis",
                      "U6": "Kompeten", "U7": "Sopan dan ramah",
                      "U8": "Dikelola dengan baik", "U9": "Baik"}
            for code, text in chosen.items():
                await page.locator("fieldset", has=page.locator(f"input[name={code}]")) \
                    .get_by_label(text, exact=True).check()
            await page.get_by_label("Pekerjaan").select_option("wirausaha")
            await page.get_by_role("button", name="Kirim jawaban saya").click()
            await expect(page.locator("#U5-error")).to_be_visible()
            await expect(page.locator("input[name=U1][value='4']")).to_be_checked()
            await page.locator("fieldset", has=page.locator("input[name=U5]")) \
                .get_by_label("Sesuai", exact=True).check()
            await page.get_by_role("button", name="Kirim jawaban saya").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text("Terima kasih")
            await expect(page.get_by_role("status")).to_contain_text("telah dicatat")
            scroll = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert scroll <= 0
        finally:
            await context.close()
    stored = await rows(settings, "SELECT answers, occupation, channel, duplicate"
                        " FROM intake.survey_responses")
    assert [(r["answers"], r["occupation"], r["channel"], r["duplicate"]) for r in stored] == [
        ([4, 3, 3, 4, 3, 3, 3, 4, 3], "wirausaha", "web", False)]


async def test_poster_has_a_qr_code_of_the_survey_page(settings: Settings) -> None:
    async with running_service("intake", settings.with_(
            intake_url="https://lapor.medan.go.id")) as client:
        r = await client.get(f"/survey/{UNIT}/poster")
        assert r.status == 200
        html = await r.text()
        assert "<svg" in html and "Puskesmas Padang Bulan" in html
        assert f"https://lapor.medan.go.id/survey/{UNIT}" in html
        assert f"/survei {UNIT}" in html
        r = await client.get(f"/survey/{UNIT}/qr.svg")
        assert r.status == 200 and r.content_type == "image/svg+xml"
        r = await client.get("/survey/MDN-NOPE")
        assert r.status == 404
        # The index: by agency (what a closed complaint's agency links to) and region.
        r = await client.get("/survey", params={"agency": "MDN-DINKES"})
        html = await r.text()
        assert f'href="/survey/{UNIT}"' in html and 'href="/survey/MDN-PKM-SUNGGAL"' in html
        assert "SRG-" not in html and "MDN-PUPR" not in html
        r = await client.get("/survey", params={"region": "SRG"})
        html = await r.text()
        assert 'href="/survey/SRG-PKM-REMU"' in html and "MDN-" not in html


async def test_demo_survey_answers(settings: Settings) -> None:
    from awasi.catalog import load_catalog
    from awasi.cli import migrate_all
    from awasi.db import create_pool
    from awasi.demo import seed_surveys

    assert settings.database_url
    await migrate_all(settings.database_url)
    catalog = load_catalog(settings.catalog)
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        added = await seed_surveys(pool, catalog, settings, now)
        assert 200 <= added <= 500
        assert await seed_surveys(pool, catalog, settings, now) == 0  # idempotent
        periods = await pool.fetch(
            "SELECT period, count(*) AS n, bool_or(duplicate) AS dup"
            " FROM intake.survey_responses GROUP BY 1 ORDER BY 1")
        assert [p["period"] for p in periods] == ["2026-Q2", "2026-Q3"]
        assert not any(p["dup"] for p in periods)
        assert await pool.fetchval("SELECT count(*) FROM intake.outbox") == added
    finally:
        await pool.close()


# --- Telegram ------------------------------------------------------------------------

async def test_survey_in_telegram_by_command_and_deep_link(settings: Settings) -> None:
    from tests.support.botapi import TOKEN, Updates, bot_settings, running_bot, running_botapi

    async with running_botapi(TOKEN) as api:
        async with running_bot(bot_settings(settings, api), api) as bot:
            user = Updates(4201, language_code="id")
            how = await bot.say(user, user.text("/survei"))
            assert "/survei MDN-PKM-PADANGBULAN" in how.text
            nope = await bot.say(user, user.text("/survei MDN-NOPE"))
            assert "Tidak ada unit layanan dengan kode MDN-NOPE" in nope.text
            # The QR poster's deep link: /start survei-UNIT.
            q = await bot.say(user, user.text(f"/start survei-{UNIT}"))
            assert "Puskesmas Padang Bulan" in q.text and "Pertanyaan 1 dari 9" in q.text
            assert "kesesuaian persyaratan" in q.text
            assert q.buttons[3] == ("4. Sangat sesuai", f"sv:{UNIT}:4")
            given = ""
            for digit in "434433423":
                given += digit
                q = await bot.say(user, user.button(f"sv:{UNIT}:{given}"))
            assert "telah dicatat" in q.text
            # Again by command, in the same quarter: recorded as a duplicate.
            q = await bot.say(user, user.text(f"/survei {UNIT.lower()}"))
            assert "Pertanyaan 1 dari 9" in q.text
            q = await bot.say(user, user.button(f"sv:{UNIT}:333333333"))
            assert "tidak dihitung lagi" in q.text
            # Forged button data changes nothing.
            await bot.post(user.button(f"sv:{UNIT}:5"))
            await bot.post(user.button("sv:MDN-NOPE:333333333"))
            rows_ = await bot.pool.fetch(
                "SELECT answers, channel, duplicate FROM intake.survey_responses"
                " ORDER BY submitted_at")
            assert [(r["answers"], r["channel"], r["duplicate"]) for r in rows_] == [
                ([4, 3, 4, 4, 3, 3, 4, 2, 3], "telegram", False),
                ([3] * 9, "telegram", True)]
        api.assert_clean()
