"""Periodic evaluation reports per region (and per agency) for a period: a web page
``GET /reports/{region}/{period}`` and a PDF ``GET /reports/{region}/{period}.pdf``
from the same template (WeasyPrint), Bahasa Indonesia first (``?lang=en``), and
publication by the panel (``POST /api/v1/reports/{region}/{period}/publish``).

What the figures count (docs/EVALUATION.md says the same in prose): the complaints
*received in the period* (submitted between the period's first and last local day in
the region's time zone), what became of them so far, and the findings recorded in the
period. Each figure comes with the previous period's, and the change. Rates follow
the dashboard's sample-size rule (hidden below ``stats_min_cases``). The complaint
figures read the rollups kept per local submission month (counts and duration
histograms; medians at most one bucket low, see rollups.py): a period's cost is its
months, not its complaints nor the history. Breaches count under the deadline's
agency; a case is due for the on-time share once its resolution deadline has fired.

Publication: once the period has ended, a panel member publishes it. The HTML and
PDF of both languages are stored as they are (``published_reports``, which refuses
UPDATE and DELETE), their SHA-256 go on the audit chain with the member's username,
and from then on the page and the PDF are those stored bytes: a late event changes
the live tables, never a published report.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import asyncpg
from aiohttp import web
from babel.numbers import format_decimal

from awasi import i18n
from awasi.catalog import Catalog
from awasi.events.envelope import Envelope
from awasi.events.payloads import ReportPublished
from awasi.identity import require_user
from awasi.periods import BadPeriod, Period
from awasi.web import keys as web_keys
from awasi.web import keyset, page_cache
from awasi.web.errors import Conflict, NotFound
from awasi.web.responses import json_response
from services.oversight import chain, keys, recommendations, rollups, satisfaction, supports
from services.oversight.errors import field_error

CHANNELS = ("web", "api", "open311", "telegram")
OUTCOMES = ("no_maladministration", "maladministration", "inconclusive")
CHANNEL_LABELS = {"web": "Web form", "api": "JSON API", "open311": "Open311",
                  "telegram": "Telegram"}
STATUS_LABELS = recommendations.STATUS_LABELS

_MONTHS = """
    FROM oversight.stats_monthly
    WHERE region = $1 AND month >= $2 AND month <= $3 AND ($4::text IS NULL OR agency = $4)
"""


def _rate(value: float | None, n: int, min_cases: int) -> dict[str, Any]:
    hidden = n < min_cases
    return {"value": None if hidden or value is None else float(value), "n": n,
            "hidden": hidden}


async def figures(conn: asyncpg.Connection, catalog: Catalog, region: str, period: Period,
                  agency: str | None) -> dict[str, Any]:
    """The complaint figures of one period (see the module docstring), from the
    rollups (services/oversight/rollups.py): the period's months."""
    args = (region, period.first_day, period.last_day, agency)
    # One read of the period's rollup rows for the totals and both breakdowns
    # (GROUPING SETS): a year of a region is thousands of rows (agency x category x
    # channel x month), read three times before.
    rows = await conn.fetch(
        "SELECT grouping(category) = 0 AS by_category, grouping(channel) = 0 AS by_channel,"
        " category, channel,"
        " coalesce(sum(received), 0) AS received, coalesce(sum(resolved), 0) AS resolved,"
        " coalesce(sum(on_time), 0) AS on_time, coalesce(sum(due_n), 0) AS due_n,"
        " coalesce(sum(disputes), 0) AS disputes,"
        " coalesce(sum(disputed_cases), 0) AS disputed_cases,"
        " coalesce(sum(rating_n), 0) AS rating_n, coalesce(sum(rating_sum), 0) AS rating_sum,"
        + "".join(f" coalesce(sum(rating_{k}), 0) AS rating_{k}," for k in range(1, 6))
        + " coalesce(sum(breaches), 0) AS breaches,"
        " coalesce(sum(escalations2), 0) AS escalations2" + _MONTHS
        + " GROUP BY GROUPING SETS ((), (category), (channel))", *args)
    base = next(r for r in rows if not r["by_category"] and not r["by_channel"])

    def breakdown(column: str, key: str) -> list[tuple[str, int]]:
        # A case whose complaint.submitted never arrived has no channel: not counted.
        found = [(r[key], int(r["received"])) for r in rows
                 if r[column] and r["received"] > 0 and (key != "channel" or r[key] != "")]
        return sorted(found, key=lambda kn: (-kn[1], kn[0]))

    by_category = breakdown("by_category", "category")
    by_channel = breakdown("by_channel", "channel")
    hist: dict[str, list[tuple[int, int]]] = {"ack": [], "res": []}
    for h in await conn.fetch(
            "SELECT measure, bucket, sum(n) AS n FROM oversight.stats_hist_monthly"
            " WHERE region = $1 AND month >= $2 AND month <= $3"
            "   AND agency = coalesce($4::text, $5)"
            " GROUP BY 1, 2 HAVING sum(n) > 0 ORDER BY 1, 2",
            *args, rollups.ALL_AGENCIES):
        hist[h["measure"]].append((h["bucket"], int(h["n"])))
    tz = catalog.region(region).timezone
    start, end = period.bounds(tz)
    counted = await findings_counts(conn, region, start, end, agency)
    min_cases = catalog.stats_min_cases
    ack_n = sum(n for _, n in hist["ack"])
    res_n = sum(n for _, n in hist["res"])
    return {
        "received": int(base["received"]),
        "resolved": int(base["resolved"]),
        "by_category": [{"code": k, "n": n} for k, n in by_category],
        "by_channel": [{"code": k, "n": n} for k, n in by_channel],
        "share_resolved_within_deadline": _rate(
            base["on_time"] / base["due_n"] if base["due_n"] else None, int(base["due_n"]),
            min_cases),
        "median_hours_to_acknowledge": _rate(rollups.median(hist["ack"]), ack_n, min_cases),
        "median_hours_to_resolve": _rate(rollups.median(hist["res"]), res_n, min_cases),
        "breaches": int(base["breaches"]),
        "escalations_level2": int(base["escalations2"]),
        "disputes": int(base["disputes"]),
        "disputed_cases": int(base["disputed_cases"]),
        "finding_outcomes": counted["outcomes"],
        "findings_published": counted["published"],
        "findings_by_agency": counted["by_agency"],
        "average_rating": _rate(base["rating_sum"] / base["rating_n"] if base["rating_n"]
                                else None, int(base["rating_n"]), min_cases),
        "ratings": {str(k): int(base[f"rating_{k}"]) for k in range(1, 6)},
    }


def _value(fig: Any) -> float | None:
    if isinstance(fig, dict):
        return fig["value"]
    return None if fig is None else float(fig)


def change(now: Any, before: Any) -> float | None:
    """``now - before`` for two figures (counts or shown rates); None if either is
    missing or hidden."""
    a, b = _value(now), _value(before)
    return None if a is None or b is None else round(a - b, 4)


# --- the period's findings ------------------------------------------------------------
# A report counts every confirmed finding of the period per agency and outcome, and
# lists only the first FINDINGS_LISTED published ones: a year of a large city holds
# thousands (5,774 in bench/scale.py's 10M history), a list no reader of the report
# goes through, which made the live report cost 4-5x the quarter's and its PDF
# hundreds of pages. The whole list is paged on its own page and API (keyset pages
# of FINDINGS_PAGE) and never changes the report. docs/EVALUATION.md, "Findings".
FINDINGS_LISTED = 50
FINDINGS_PAGE = 100
FINDINGS_PAGE_MAX = 500
FINDINGS_SORT = "findings"  # the keyset token's list name


async def findings_counts(conn: asyncpg.Connection, region: str, start: Any, end: Any,
                          agency: str | None) -> dict[str, Any]:
    """Confirmed findings recorded in ``[start, end)``: per outcome, per agency and
    outcome, and how many of them are published. One read of the period's rows."""
    rows = await conn.fetch(
        "SELECT agency, outcome, count(*) AS n, count(*) FILTER (WHERE published) AS pub"
        " FROM oversight.findings"
        " WHERE region = $1 AND recorded_at >= $2 AND recorded_at < $3"
        "   AND ($4::text IS NULL OR agency = $4) GROUP BY 1, 2", region, start, end, agency)
    per_agency: dict[str, dict[str, Any]] = {}
    for r in rows:
        a = per_agency.setdefault(r["agency"] or "", {
            "agency": r["agency"], "outcomes": dict.fromkeys(OUTCOMES, 0), "total": 0,
            "published": 0})
        if r["outcome"] in a["outcomes"]:
            a["outcomes"][r["outcome"]] += int(r["n"])
        a["total"] += int(r["n"])
        a["published"] += int(r["pub"])
    by_agency = sorted(per_agency.values(), key=lambda a: (-a["total"], a["agency"] or ""))
    return {"outcomes": {o: sum(a["outcomes"][o] for a in by_agency) for o in OUTCOMES},
            "published": sum(a["published"] for a in by_agency), "by_agency": by_agency}


async def published_findings(conn: asyncpg.Connection, region: str, start: Any, end: Any,
                             agency: str | None, *, limit: int,
                             after: tuple[Any, int] | None = None) -> list[asyncpg.Record]:
    """Published findings recorded in ``[start, end)`` in date order, the page after
    ``after`` (its ``(recorded_at, id)``): one range of the index of published
    findings per region, however deep the page (migration 1600)."""
    sql = ("SELECT id, agency, outcome, maladministration_type, recommendation, recorded_at"
           " FROM oversight.findings"
           " WHERE region = $1 AND recorded_at >= $2 AND recorded_at < $3 AND published"
           "   AND ($4::text IS NULL OR agency = $4)")
    args: list[Any] = [region, start, end, agency, limit]
    if after is not None:
        sql += " AND (recorded_at, id) > ($6, $7)"
        args += list(after)
    return await conn.fetch(sql + " ORDER BY recorded_at, id LIMIT $5", *args)


def finding_json(f: asyncpg.Record) -> dict[str, Any]:
    return {"id": f["id"], "agency": f["agency"], "outcome": f["outcome"],
            "maladministration_type": f["maladministration_type"],
            "recommendation": f["recommendation"], "recorded_at": f["recorded_at"].isoformat()}


def agency_label(catalog: Catalog) -> Any:
    """The function pages name an agency with: its short name ("–" for none)."""
    return lambda code: (catalog.agencies[code].short_name if code in catalog.agencies
                         else code or "–")


def findings_path(region: str, period: Period, agency: str | None) -> str:
    return f"/reports/{region}/{period.code}/findings" + (f"?agency={agency}" if agency else "")


COMPARED = ("received", "resolved", "share_resolved_within_deadline",
            "median_hours_to_acknowledge", "median_hours_to_resolve", "breaches",
            "escalations_level2", "disputes", "average_rating")


async def build(conn: asyncpg.Connection, catalog: Catalog, region: str, period: Period,
                agency: str | None, locale: str) -> dict[str, Any]:
    """Everything a report shows, as plain data (also ``GET /api/v1/reports/...``)."""
    current = await figures(conn, catalog, region, period, agency)
    previous = await figures(conn, catalog, region, period.previous(), agency)
    ikm_now = await satisfaction.results(conn, catalog, region, period, locale)
    ikm_before = await satisfaction.results(conn, catalog, region, period.previous(), locale)
    before_units = {u["code"]: u for u in ikm_before["units"]}
    units = []
    for u in ikm_now["units"]:
        if agency is not None and u["agency"] != agency:
            continue
        prior = before_units.get(u["code"], {})
        units.append({**u, "change": change(u["index"], prior.get("index"))})
    ikm_total = (next((a for a in ikm_now["agencies"] if a["code"] == agency), None)
                 if agency else ikm_now["region"])
    ikm_prior = (next((a for a in ikm_before["agencies"] if a["code"] == agency), None)
                 if agency else ikm_before["region"])
    tz = catalog.region(region).timezone
    start, end = period.bounds(tz)
    findings = await published_findings(conn, region, start, end, agency,
                                        limit=FINDINGS_LISTED)
    recs = await recommendations.listing(conn, region=region, agency=agency)
    supported = await supports.period_figures(conn, region, period, agency)
    supported_before = await supports.period_figures(conn, region, period.previous(), agency)
    reg = catalog.region(region)
    return {
        "region": {"code": reg.code, "name": reg.name, "timezone": reg.timezone},
        "agency": ({"code": agency, "name": catalog.agency(agency).name} if agency else None),
        "period": {"code": period.code, "first_day": period.first_day.isoformat(),
                   "last_day": period.last_day.isoformat()},
        "previous_period": period.previous().code,
        "min_cases": catalog.stats_min_cases,
        "complaints": current,
        "previous": previous,
        "changes": {k: change(current[k], previous[k]) for k in COMPARED},
        "satisfaction": {"total": ikm_total,
                         "change": change((ikm_total or {}).get("index"),
                                          (ikm_prior or {}).get("index")),
                         "elements": ikm_now["elements"], "units": units},
        # The first FINDINGS_LISTED published findings of the period; all of them
        # are counted in complaints.findings_by_agency and listed, paged, at
        # findings_list (a year of a large city holds thousands).
        "findings": [finding_json(f) for f in findings],
        "findings_list": findings_path(region, period, agency),
        "recommendations": recs,
        # How many people the problems touch: supports of public reports counted in
        # the period (docs/PARTICIPATION.md).
        "supports": {**supported, "previous_total": supported_before["total"],
                     "change": change(supported["total"], supported_before["total"])},
    }


# --- rendering -----------------------------------------------------------------------

def number(value: float | int | None, digits: int, locale: str) -> str:
    """``77,78`` in Indonesian, ``77.78`` in English; "–" for nothing."""
    if value is None:
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale="id_ID" if locale == "id" else "en_GB")


def signed(value: float | None, digits: int, locale: str, scale: float = 1.0) -> str:
    if value is None:
        return "–"
    text = number(abs(value) * scale, digits, locale)
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def summary(data: dict[str, Any], gettext: Any, locale: str) -> list[str]:
    """A few plain sentences: what happened in the period, in the reader's language."""
    c = data["complaints"]
    where = data["agency"]["name"] if data["agency"] else data["region"]["name"]
    out = [gettext("In %(period)s, %(where)s received %(n)s complaints (%(change)s on the "
                   "previous period).", period=data["period"]["code"], where=where,
                   n=c["received"], change=signed(data["changes"]["received"], 0, locale))]
    share = c["share_resolved_within_deadline"]
    if share["value"] is not None:
        out.append(gettext("%(share)s%% of the complaints due were resolved within the "
                           "deadline; %(breaches)s deadlines were missed.",
                           share=number(share["value"] * 100, 0, locale),
                           breaches=c["breaches"]))
    else:
        out.append(gettext("Too few complaints fell due to show an on-time rate; "
                           "%(breaches)s deadlines were missed.", breaches=c["breaches"]))
    total = data["satisfaction"]["total"]
    if total and total["index"] is not None:
        out.append(gettext("The public satisfaction index is %(index)s (%(grade)s) from "
                           "%(n)s respondents.", index=number(total["index"], 2, locale),
                           grade=total["grade_label"], n=total["respondents"]))
    else:
        out.append(gettext("Too few survey answers to show a satisfaction index."))
    recs = data["recommendations"]
    if recs:
        done = sum(1 for r in recs if r["status"] == "done")
        out.append(gettext("%(done)s of %(n)s recommendations to agencies are done.",
                           done=done, n=len(recs)))
    return out


def localized(chart: dict[str, Any], digits: int, locale: str) -> dict[str, Any]:
    """A chart's value labels in the reader's number format (77,78 in Indonesian)."""
    for bar in chart["bars"]:
        if bar["value"] is not None:
            bar["display"] = number(bar["value"], digits, locale)
    return chart


def render_html(app: web.Application, data: dict[str, Any], locale: str,
                published: dict[str, Any] | None = None) -> str:
    """The report page (and the PDF's source) in ``locale``."""
    from services.oversight.pages import bar_chart

    messages = app[keys.MESSAGES]
    with i18n.using_locale(locale):
        catalog = app[keys.CATALOG]

        def _(message: str, **params: Any) -> str:
            return messages.gettext(message, locale, **params)

        categories = [{"label": (catalog.categories[r["code"]].name(locale)
                                 if r["code"] in catalog.categories else r["code"] or "–"),
                       "n": r["n"]} for r in data["complaints"]["by_category"]]
        charts = []
        if categories:
            charts.append(localized(bar_chart(_("Complaints received by category"), categories,
                                              "n", "n", label_key="label"), 0, locale))
        units = [u for u in data["satisfaction"]["units"] if u["respondents"]]
        if units:
            charts.append(localized(bar_chart(_("Satisfaction index per service unit"), [
                {"label": u["name"][:28], "ikm": {"value": u["index"], "n": u["respondents"],
                                                  "hidden": u["hidden"]}} for u in units],
                "ikm", "r", label_key="label", scale_max=100.0), 2, locale))
        env = aiohttp_jinja2.get_env(app)
        where = data["agency"]["name"] if data["agency"] else data["region"]["name"]
        running = f"{where} · {data['period']['code']}".replace('"', "'").replace("\\", "")
        return env.get_template("report.html").render(
            locale=locale, d=data, charts=charts, published=published,
            summary=summary(data, _, locale), running=running,
            num=lambda v, digits=0: number(v, digits, locale),
            signed=lambda v, digits=0, scale=1.0: signed(v, digits, locale, scale),
            category_name=lambda code: (catalog.categories[code].name(locale)
                                        if code in catalog.categories else code),
            agency_name=agency_label(catalog),
            channel_label=lambda code: _(CHANNEL_LABELS.get(code, code)),
            status_label=lambda code: _(STATUS_LABELS.get(code, code)),
            public_base=app[web_keys.SETTINGS].oversight_url.rstrip("/"),
            other_lang="en" if locale == "id" else "id")


def _pdf_sync(html: str) -> bytes:
    from weasyprint import HTML  # imported on first use: it loads Pango

    return HTML(string=html, base_url=None).write_pdf()


async def render_pdf(html: str) -> bytes:
    """The PDF of a report page (WeasyPrint, in a thread: it takes CPU seconds)."""
    return await asyncio.to_thread(_pdf_sync, html)


# --- web -----------------------------------------------------------------------------

def _target(request: web.Request) -> tuple[str, Period, str | None, bool]:
    catalog = request.app[keys.CATALOG]
    region = request.match_info["region"]
    name = request.match_info["period"]
    pdf = name.endswith(".pdf")
    if region not in catalog.regions:
        raise NotFound(f"Unknown region {region!r}")
    try:
        period = Period.parse(name.removesuffix(".pdf"))
    except BadPeriod as e:
        raise NotFound(str(e)) from e
    agency = (request.query.get("agency") or "").strip() or None
    if agency is not None and (agency not in catalog.agencies
                               or catalog.agencies[agency].region != region):
        raise field_error("agency", f"unknown agency {agency!r} in {region}")
    return region, period, agency, pdf


def _locale(request: web.Request) -> str:
    return i18n.normalize(request.query.get("lang")) or i18n.DEFAULT


async def archived(conn: asyncpg.Connection, region: str, period: Period,
                   agency: str | None, locale: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT html, pdf, html_sha256, pdf_sha256, published_by, published_at"
        " FROM oversight.published_reports"
        " WHERE region = $1 AND period = $2 AND agency = $3 AND locale = $4",
        region, period.code, agency or "", locale)


async def report_page(request: web.Request) -> web.Response:
    """The report (HTML or PDF): the archived bytes once published, else live."""
    region, period, agency, pdf = _target(request)
    locale = _locale(request)
    app = request.app
    async with app[web_keys.POOL].acquire() as conn:
        stored = await archived(conn, region, period, agency, locale)
        data = None if stored else await build(conn, app[keys.CATALOG], region, period,
                                                agency, locale)
    name = f"awasi-{region}-{period.code}{'-' + agency if agency else ''}-{locale}"
    if stored is not None:
        headers = {"X-Awasi-Published": "true",
                   "ETag": f'"{stored["pdf_sha256"] if pdf else stored["html_sha256"]}"'}
        if pdf:
            return web.Response(body=stored["pdf"], content_type="application/pdf",
                                headers={**headers, "Content-Disposition":
                                         f'inline; filename="{name}.pdf"'})
        return web.Response(body=stored["html"], content_type="text/html", charset="utf-8",
                            headers=headers)
    assert data is not None
    html = app[keys.PAGES].get_or_render(page_cache.digest("report", data, locale),
                                         lambda: render_html(app, data, locale))
    if pdf:
        return web.Response(body=await render_pdf(html), content_type="application/pdf",
                            headers={"Content-Disposition": f'inline; filename="{name}.pdf"',
                                     "Cache-Control": "no-store"})
    return web.Response(text=html, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Content-Language": locale})


async def report_json(request: web.Request) -> web.Response:
    region, period, agency, _pdf = _target(request)
    async with request.app[web_keys.POOL].acquire() as conn:
        data = await build(conn, request.app[keys.CATALOG], region, period, agency,
                           _locale(request))
        stored = await archived(conn, region, period, agency, "id")
    data["published"] = ({"pdf_sha256": stored["pdf_sha256"],
                          "html_sha256": stored["html_sha256"],
                          "published_at": stored["published_at"].isoformat()}
                         if stored else None)
    return json_response(data)


def _findings_after(request: web.Request) -> tuple[Any, int] | None:
    token = request.query.get("after")
    if token is None:
        return None
    return keyset.decode(token, FINDINGS_SORT, (_aware_time, int))


def _aware_time(value: Any) -> datetime:
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError("no time zone")
    return at


def _findings_limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return FINDINGS_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= FINDINGS_PAGE_MAX:
        raise field_error("limit", f"a whole number from 1 to {FINDINGS_PAGE_MAX}")
    return int(raw)


async def findings_page_data(request: web.Request, limit: int) -> dict[str, Any]:
    """One keyset page of the period's published findings, with their number."""
    region, period, agency, _pdf = _target(request)
    after = _findings_after(request)
    start, end = period.bounds(request.app[keys.CATALOG].region(region).timezone)
    async with request.app[web_keys.POOL].acquire() as conn:
        rows = await published_findings(conn, region, start, end, agency, limit=limit + 1,
                                        after=after)
        total = (await findings_counts(conn, region, start, end, agency))["published"]
    last = rows[limit - 1] if len(rows) > limit else None
    return {"region": region, "period": period.code, "agency": agency, "total": total,
            "items": [finding_json(f) for f in rows[:limit]],
            "next": (keyset.encode(FINDINGS_SORT, [last["recorded_at"].isoformat(), last["id"]])
                     if last is not None else None)}


async def findings_json(request: web.Request) -> web.Response:
    """``GET /api/v1/reports/{region}/{period}/findings``: every published finding of
    the period, in date order, a keyset page at a time (``?after=``, ``?limit=``)."""
    return json_response(await findings_page_data(request, _findings_limit(request)))


async def findings_html(request: web.Request) -> web.Response:
    """``GET /reports/{region}/{period}/findings``: the same list as a page."""
    data = await findings_page_data(request, FINDINGS_PAGE)
    locale = _locale(request)
    app = request.app
    catalog = app[keys.CATALOG]
    with i18n.using_locale(locale):
        region = catalog.region(data["region"])
        query = {"lang": locale, **({"agency": data["agency"]} if data["agency"] else {})}
        html = aiohttp_jinja2.get_env(app).get_template("report_findings.html").render(
            locale=locale, d=data, region=region,
            agency=catalog.agency(data["agency"]) if data["agency"] else None,
            report_url=f"/reports/{data['region']}/{data['period']}?{urlencode(query)}",
            next_url=(f"?{urlencode({**query, 'after': data['next']})}" if data["next"]
                      else None),
            other_url=f"?{urlencode({**query, 'lang': 'en' if locale == 'id' else 'id'})}",
            other_lang="en" if locale == "id" else "id",
            num=lambda v, digits=0: number(v, digits, locale),
            agency_name=agency_label(catalog))
    return web.Response(text=html, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Content-Language": locale})


async def publish_report(app: web.Application, region: str, period: Period,
                         agency: str | None, username: str) -> dict[str, Any]:
    """Archive the report of an ended period in both languages and put the files'
    SHA-256 on the chain with ``username``. ``Conflict`` if the period has not ended
    in the region's time zone (``period_open``) or is published already."""
    catalog = app[keys.CATALOG]
    now = app[keys.CLOCK].now()
    if not period.ended(now, catalog.region(region).timezone):
        raise Conflict(f"{period.code} has not ended yet in {region}", code="period_open")
    pool = app[web_keys.POOL]
    async with pool.acquire() as conn:
        if await archived(conn, region, period, agency, "id") is not None:
            raise Conflict("This report is published already", code="already_published")
        files: dict[str, tuple[bytes, bytes]] = {}
        for locale in i18n.SUPPORTED:
            data = await build(conn, catalog, region, period, agency, locale)
            stamp = {"at": now.isoformat(timespec="seconds")}
            html = render_html(app, data, locale, published=stamp).encode()
            files[locale] = (html, await render_pdf(html.decode()))
    digests = {f"{loc}.{kind}": hashlib.sha256(blob).hexdigest()
               for loc, (html, pdf) in files.items()
               for kind, blob in (("html", html), ("pdf", pdf))}
    key = f"report:{region}:{period.code}" + (f":{agency}" if agency else "")
    env = Envelope.build(ReportPublished(region=region, period=period.code, agency=agency,
                                         files=digests),
                         complaint_id=key, producer="oversight", occurred_at=now,
                         event_id=uuid.uuid4())
    async with pool.acquire() as conn, conn.transaction():
        # Rendering took seconds outside any transaction: check again under the
        # primary key (a second publisher's INSERT fails on it, so one wins).
        if await archived(conn, region, period, agency, "id") is not None:
            raise Conflict("This report is published already", code="already_published")
        for locale, (html, pdf) in files.items():
            try:
                await conn.execute(
                    "INSERT INTO oversight.published_reports (region, period, agency, locale,"
                    " html, pdf, html_sha256, pdf_sha256, published_by, published_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    region, period.code, agency or "", locale, html, pdf,
                    digests[f"{locale}.html"], digests[f"{locale}.pdf"], username, now)
            except asyncpg.UniqueViolationError as e:
                raise Conflict("This report is published already",
                               code="already_published") from e
        seq = await chain.append(conn, env, recorded_at=now, actor=username)
    return {"region": region, "period": period.code, "agency": agency, "files": digests,
            "chain_seq": seq, "published_by": username, "published_at": now.isoformat()}


async def publish(request: web.Request) -> web.Response:
    """``POST /api/v1/reports/{region}/{period}/publish`` (panel): see
    ``publish_report``. 409 if the period has not ended or is published already."""
    user = await require_user(request, roles=("panel",))
    region, period, agency, _pdf = _target(request)
    out = await publish_report(request.app, region, period, agency, user.username)
    return json_response(out, status=201)


async def published_list(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every published report (Indonesian files' hashes), newest first."""
    rows = await conn.fetch(
        "SELECT region, period, agency, pdf_sha256, published_by, published_at"
        " FROM oversight.published_reports WHERE locale = 'id'"
        " ORDER BY published_at DESC LIMIT 200")
    return [dict(r) for r in rows]


_OBJ: dict[str, Any] = {"type": "object"}


def add_routes(app: web.Application) -> None:
    api = app[web_keys.OPENAPI]
    r = app.router
    agency_param = {"name": "agency", "in": "query", "required": False,
                    "schema": {"type": "string"}}
    lang_param = {"name": "lang", "in": "query", "required": False,
                  "schema": {"type": "string", "enum": ["id", "en"]}}
    r.add_get("/reports/{region}/{period}", report_page)
    api.add(r, "GET", "/api/v1/reports/{region}/{period}", report_json, tags=["evaluation"],
            summary="The figures of a period's evaluation report (complaints, deadlines, "
                    "disputes, ratings, satisfaction, findings, recommendations), each "
                    "with the previous period's", parameters=[agency_param, lang_param],
            responses={200: _OBJ}, errors=(404, 422))
    r.add_get("/reports/{region}/{period}/findings", findings_html)
    api.add(r, "GET", "/api/v1/reports/{region}/{period}/findings", findings_json,
            tags=["evaluation"],
            summary="Every published finding of the period in date order, a keyset page at "
                    "a time (the report lists the first few)",
            parameters=[agency_param,
                        {"name": "after", "in": "query", "required": False,
                         "schema": {"type": "string", "maxLength": keyset.MAX_TOKEN}},
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1,
                                    "maximum": FINDINGS_PAGE_MAX}}],
            responses={200: _OBJ}, errors=(404, 422))
    api.add(r, "POST", "/api/v1/reports/{region}/{period}/publish", publish,
            tags=["evaluation", "panel"],
            summary="Publish an ended period's report: archived as it is, its SHA-256 on "
                    "the audit chain; it never changes afterwards",
            parameters=[agency_param], responses={201: _OBJ}, secured=True,
            errors=(404, 409, 422))

