"""Public satisfaction (IKM) per service unit, agency and region, for a period.

Write side: ``apply`` consumes ``survey.response_submitted`` (from intake's topic)
into ``oversight.survey_daily``: per unit and local day (the unit's region's time
zone), the counted responses, the duplicates and each element's answer sum, in the
consumer's transaction. Survey answers are not cases and do not go on the case
timeline's chain.

Read side: ``results`` sums the days of a period (one index range scan per region)
and computes each figure with ``awasi.ikm`` (exact means, the index rounded half-up
once). An agency's and a region's figures pool the responses of their units (each
element's sum over all respondents), so a unit with more respondents weighs more, as
one survey of the agency would.

What is shown: the number of respondents and duplicates always; the element means,
the index and the grade only from ``stats_min_cases`` respondents on (hidden below
it, as every rate on the dashboard); and ``reliable`` says whether the respondents
reach the sample the unit's population needs (Krejcie-Morgan; a unit without a
population figure has no requirement, an agency or region needs each of its units'
samples).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg

from awasi import ikm
from awasi.catalog import Catalog
from awasi.events.envelope import Envelope
from awasi.events.payloads import SurveyResponseSubmitted
from awasi.periods import Period, local_day
from awasi.questionnaire import QUESTIONNAIRE

EVENT_TYPES = frozenset({"survey.response_submitted"})
_SUMS = ", ".join(f"u{i}" for i in range(1, 10))


async def apply(conn: asyncpg.Connection, catalog: Catalog, env: Envelope) -> None:
    """Add one response to its unit's day (inside the consumer's transaction)."""
    body = SurveyResponseSubmitted.model_validate(env.payload)
    region = catalog.regions.get(body.region)
    # The region's zone decides the day; a region gone from the catalog keeps WIB.
    zone = region.timezone if region is not None else "Asia/Jakarta"
    day = local_day(body.submitted_at, zone)
    answers = [body.answers[e.code] for e in QUESTIONNAIRE]
    if body.duplicate:
        await conn.execute(
            "INSERT INTO oversight.survey_daily (unit, day, region, agency, duplicates)"
            " VALUES ($1, $2, $3, $4, 1) ON CONFLICT (unit, day)"
            " DO UPDATE SET duplicates = survey_daily.duplicates + 1",
            body.unit, day, body.region, body.agency)
        return
    updates = ", ".join(f"u{i} = survey_daily.u{i} + EXCLUDED.u{i}" for i in range(1, 10))
    await conn.execute(
        f"INSERT INTO oversight.survey_daily (unit, day, region, agency, responses, {_SUMS})"
        " VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " ON CONFLICT (unit, day) DO UPDATE SET"
        f" responses = survey_daily.responses + 1, {updates}",
        body.unit, day, body.region, body.agency, *answers)


# --- reading -------------------------------------------------------------------------

@dataclass
class Tally:
    """Counted responses, duplicates and per-element sums of a set of units."""

    responses: int = 0
    duplicates: int = 0
    sums: list[int] = field(default_factory=lambda: [0] * 9)

    def add(self, other: Tally) -> None:
        self.responses += other.responses
        self.duplicates += other.duplicates
        self.sums = [a + b for a, b in zip(self.sums, other.sums, strict=True)]


async def tallies(conn: asyncpg.Connection, region: str, first: date,
                  last: date) -> dict[str, Tally]:
    """Per unit, the sums of the region's days ``first..last`` (inclusive)."""
    rows = await conn.fetch(
        f"SELECT unit, sum(responses)::bigint AS responses,"
        f" sum(duplicates)::bigint AS duplicates,"
        f" {', '.join(f'sum(u{i})::bigint AS u{i}' for i in range(1, 10))}"
        " FROM oversight.survey_daily WHERE region = $1 AND day BETWEEN $2 AND $3"
        " GROUP BY unit", region, first, last)
    return {r["unit"]: Tally(int(r["responses"]), int(r["duplicates"]),
                             [int(r[f"u{i}"]) for i in range(1, 10)]) for r in rows}


def figure(tally: Tally, required: int | None, min_cases: int,
           locale: str = "id") -> dict[str, Any]:
    """The public figures of one tally (see the module docstring for what is hidden)."""
    result = ikm.from_sums(tally.responses, tally.sums)
    hidden = tally.responses < min_cases
    out: dict[str, Any] = {
        "respondents": tally.responses,
        "duplicates": tally.duplicates,
        "required_sample": required,
        "reliable": (not hidden) and (required is None or tally.responses >= required),
        "hidden": hidden,
        "elements": None, "index": None, "grade": None, "grade_label": None,
    }
    if not hidden and result.index is not None and result.grade is not None:
        # Means are exact fractions; shown to 4 decimals (the index used them exact).
        out["elements"] = {code: round(float(mean), 4) for code, mean in result.means.items()}
        out["index"] = float(result.index)
        out["grade"] = result.grade.letter
        out["grade_label"] = result.grade.label(locale)
    return out


async def results(conn: asyncpg.Connection, catalog: Catalog, region_code: str,
                  period: Period, locale: str = "id") -> dict[str, Any]:
    """Per unit, per agency and for the region, the period's satisfaction figures.
    Raises ``UnknownCode`` for an unknown region."""
    region = catalog.region(region_code)
    by_unit = await tallies(conn, region.code, period.first_day, period.last_day)
    min_cases = catalog.stats_min_cases
    units_out = []
    agencies: dict[str, tuple[Tally, list[int | None]]] = {}
    total = Tally()
    requirements: list[int | None] = []
    for unit in catalog.units_in(region.code):
        tally = by_unit.get(unit.code, Tally())
        required = ikm.krejcie_morgan(unit.population) if unit.population else None
        units_out.append({"code": unit.code, "name": unit.name, "agency": unit.agency,
                          "population": unit.population,
                          **figure(tally, required, min_cases, locale)})
        agency_tally, reqs = agencies.setdefault(unit.agency, (Tally(), []))
        agency_tally.add(tally)
        reqs.append(required)
        total.add(tally)
        requirements.append(required)
    agencies_out = []
    for code, (tally, reqs) in agencies.items():
        agency = catalog.agencies[code]
        agencies_out.append({"code": code, "name": agency.name,
                             "short_name": agency.short_name,
                             **figure(tally, _needed(reqs), min_cases, locale)})
    return {
        "region": {"code": region.code, "name": region.name,
                   **figure(total, _needed(requirements), min_cases, locale)},
        "period": {"code": period.code, "first_day": period.first_day.isoformat(),
                   "last_day": period.last_day.isoformat(), "timezone": region.timezone},
        "min_respondents": min_cases,
        "elements": [{"code": e.code, "name": e.name(locale)} for e in QUESTIONNAIRE],
        "agencies": agencies_out,
        "units": units_out,
    }


def _needed(requirements: list[int | None]) -> int | None:
    known = [r for r in requirements if r is not None]
    return sum(known) if known else None
