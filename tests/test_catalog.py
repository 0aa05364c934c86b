"""The deployment catalog: the demo catalog, routing, policies, and broken files that
must fail with an error naming the right line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from awasi.catalog import (
    Catalog,
    CatalogError,
    Policy,
    RouteDecision,
    UnknownCode,
    load_catalog,
    parse_catalog,
)
from awasi.settings import DEMO_CATALOG, Settings

REGIONS = {
    "MDN": "Asia/Jakarta",
    "PLJ": "Asia/Jakarta",
    "SWL": "Asia/Jakarta",
    "PKY": "Asia/Pontianak",
    "SRG": "Asia/Jayapura",
}
CORE_AGENCIES = ("BKPSDM", "INSPEKTORAT", "DISDUKCAPIL", "DISDIK", "DINKES", "PUPR", "DLH",
                 "SATPOLPP", "DISHUB")


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(Settings().catalog)


# --- the demo catalog --------------------------------------------------------------

def test_settings_default_points_at_the_demo_catalog(demo: Catalog) -> None:
    assert Path(Settings().catalog) == DEMO_CATALOG
    assert demo.source == str(DEMO_CATALOG)


def test_demo_has_the_five_cities_in_their_time_zones(demo: Catalog) -> None:
    assert {code: r.timezone for code, r in demo.regions.items()} == REGIONS
    for region in demo.regions.values():
        assert region.calendar.timezone == region.timezone
        # Every region adds at least one day off of its own.
        assert region.days_off or region.annual_days_off


def test_demo_every_reference_resolves(demo: Catalog) -> None:
    for code, agency in demo.agencies.items():
        assert agency.code == code
        assert agency.region in demo.regions
        assert code.startswith(agency.region + "-")
        assert agency.name and agency.short_name
        for category in agency.category_policies:
            assert category in demo.categories
    for rule in demo.document.rules:
        assert rule.region in demo.regions
        assert demo.agencies[rule.agency].region == rule.region
        offered = {c.code for c in demo.categories_for(rule.region)}
        assert set(rule.categories) <= offered
    for region in demo.regions:
        for agency in CORE_AGENCIES:
            assert f"{region}-{agency}" in demo.agencies, (region, agency)
        for category in demo.categories_for(region):
            demo.policy(region, None, category.code)  # resolves without error


def test_demo_agency_names_are_real_names(demo: Catalog) -> None:
    bkpsdm = demo.agencies["MDN-BKPSDM"]
    assert bkpsdm.name == "Badan Kepegawaian dan Pengembangan Sumber Daya Manusia Kota Medan"
    assert bkpsdm.short_name == "BKPSDM"
    assert demo.agencies["SRG-DISDUKCAPIL"].name == (
        "Dinas Kependudukan dan Pencatatan Sipil Kota Sorong")


def test_demo_categories_have_both_languages_and_valid_classes(demo: Catalog) -> None:
    asn = {c.code: c.resolution_class for c in demo.categories.values() if c.group == "asn"}
    assert asn["asn-pungli"] == "investigation"
    assert asn["asn-absen"] == "normative"
    assert asn["asn-kasar"] == "normative"
    assert asn["asn-lambat"] == "no_investigation"
    for category in demo.categories.values():
        assert category.name_id and category.name_en
        assert category.name("id") == category.name_id
        assert category.name("en-US") == category.name_en
    assert demo.audit_sample_share == pytest.approx(0.1)
    assert demo.stats_min_cases == 5


@pytest.mark.parametrize("region", sorted(REGIONS))
@pytest.mark.parametrize(("category", "agency"), [
    ("asn-pungli", "INSPEKTORAT"),
    ("asn-absen", "BKPSDM"),
    ("asn-kasar", "BKPSDM"),
    ("asn-lambat", "INSPEKTORAT"),
    ("adminduk-ktp", "DISDUKCAPIL"),
    ("sekolah", "DISDIK"),
    ("puskesmas", "DINKES"),
    ("jalan-rusak", "PUPR"),
    ("sampah", "DLH"),
    ("lampu-jalan", "DISHUB"),
    ("ketertiban", "SATPOLPP"),
])
def test_demo_category_rules(demo: Catalog, region: str, category: str, agency: str) -> None:
    decision = demo.route(region, category, "")
    assert decision == RouteDecision(f"{region}-{agency}", f"category:{region}:{category}")


def test_demo_other_category_has_no_rule_anywhere(demo: Catalog) -> None:
    for region in demo.regions:
        assert demo.category_rule(region, "lainnya") is None
        assert demo.route(region, "lainnya", "Ada sesuatu yang aneh") == RouteDecision(
            None, "triage")


def test_category_rule_names_the_agency(demo: Catalog) -> None:
    assert demo.category_rule("MDN", "jalan-rusak") == "MDN-PUPR"
    assert demo.category_rule("SRG", "jalan-rusak") == "SRG-PUPR"


def test_unknown_codes_are_named(demo: Catalog) -> None:
    with pytest.raises(UnknownCode, match="^unknown agency 'MDN-NOPE'$"):
        demo.agency("MDN-NOPE")
    with pytest.raises(UnknownCode, match="^unknown category 'nope'$"):
        demo.category("nope")
    with pytest.raises(UnknownCode, match="^unknown region 'XXX'$"):
        demo.region("XXX")


def test_empty_text_matches_no_keyword_rule() -> None:
    # Even a keyword that a placeholder text would contain: no text, no keyword match.
    catalog = parse_catalog(MINIMAL.replace("keywords: [pungli]", "keywords: [pungli, xxxx]"))
    assert catalog.route("MDN", "sampah", "") == RouteDecision(None, "triage")
    assert catalog.route("MDN", "sampah", "ada XXXX di sini").agency == "MDN-INSPEKTORAT"


def test_a_catalog_built_directly_names_its_source_as_such() -> None:
    doc = parse_catalog(MINIMAL).document
    assert repr(Catalog(doc)).startswith("Catalog('<catalog>', regions=2,")


def test_demo_region_restricts_its_categories(demo: Catalog) -> None:
    assert len(demo.categories_for("MDN")) == len(demo.categories)
    plaju = [c.code for c in demo.categories_for("PLJ")]
    assert "parkir-liar" not in plaju
    assert "lainnya" in plaju
    # Catalog order is kept.
    assert plaju == [c for c in demo.categories if c in set(plaju)]


def test_agencies_in_a_region(demo: Catalog) -> None:
    plaju = demo.agencies_in("PLJ")
    assert {a.region for a in plaju} == {"PLJ"}
    assert "PLJ-KECAMATAN" in {a.code for a in plaju}
    assert "MDN-BKPSDM" not in {a.code for a in plaju}
    with pytest.raises(UnknownCode):
        demo.agencies_in("XXX")


def test_demo_region_calendars_hold_their_days_off(demo: Catalog) -> None:
    medan = demo.regions["MDN"].calendar
    assert not medan.is_working_day(date(2027, 7, 1))  # Hari Jadi Kota Medan, a Thursday
    assert demo.regions["SRG"].calendar.is_working_day(date(2027, 7, 1))
    assert not demo.regions["PKY"].calendar.is_working_day(date(2026, 7, 17))  # a Friday
    assert not medan.is_working_day(date(2026, 12, 24))  # cuti bersama, a Thursday
    assert demo.regions["MDN"].calendar is medan  # built once


# --- routing ----------------------------------------------------------------------

def test_keyword_rule_matches_whole_phrases_ignoring_case(demo: Catalog) -> None:
    decision = demo.route("MDN", "lainnya", "Ada JALAN\n  berlubang di depan rumah saya")
    assert decision == RouteDecision("MDN-PUPR", "keyword:MDN:jalan berlubang")
    assert demo.route("SRG", "lainnya", "Antrian di Puskesmas lama sekali").agency == (
        "SRG-DINKES")


def test_keyword_rule_does_not_match_inside_words(demo: Catalog) -> None:
    # "bidan" (midwife, a health keyword) must not match inside "bidang" (division).
    assert demo.route("MDN", "lainnya", "Kepala bidang tidak pernah di kantor") == (
        RouteDecision(None, "triage"))
    assert demo.route("MDN", "lainnya", "Bidan desa tidak datang").agency == "MDN-DINKES"


def test_first_keyword_rule_in_file_order_wins(demo: Catalog) -> None:
    # Both "sekolah" (Dinas Pendidikan) and "pungli" (Inspektorat) occur; the
    # Inspektorat rule comes first in the file.
    decision = demo.route("PKY", "lainnya", "Ada pungli di sekolah dasar")
    assert decision == RouteDecision("PKY-INSPEKTORAT", "keyword:PKY:pungli")


def test_category_rule_wins_over_keywords(demo: Catalog) -> None:
    decision = demo.route("MDN", "sampah", "petugas minta pungli untuk angkut sampah")
    assert decision == RouteDecision("MDN-DLH", "category:MDN:sampah")


def test_keyword_rules_belong_to_their_region(demo: Catalog) -> None:
    # Plaju's district office routes "kelurahan"; Medan has no such rule.
    assert demo.route("PLJ", "lainnya", "urusan kelurahan").agency == "PLJ-KECAMATAN"
    assert demo.route("MDN", "lainnya", "urusan kelurahan").agency is None


def test_unknown_category_falls_back_to_keywords_unknown_region_raises(demo: Catalog) -> None:
    assert demo.route("MDN", "no-such-category", "sampah menumpuk").agency == "MDN-DLH"
    with pytest.raises(UnknownCode, match="XXX"):
        demo.route("XXX", "sampah", "")


# --- policies ---------------------------------------------------------------------

def test_demo_policy_follows_the_national_defaults(demo: Catalog) -> None:
    assert demo.policy("MDN") == Policy()
    by_class = {c: demo.policy("MDN", "MDN-INSPEKTORAT", code).resolve_days
                for code, c in [("sampah", "light"), ("asn-absen", "normative"),
                                ("asn-lambat", "no_investigation"),
                                ("asn-pungli", "investigation")]}
    assert by_class == {"light": 2, "normative": 5, "no_investigation": 14,
                        "investigation": 60}
    policy = demo.policy("SRG", "SRG-DLH", "sampah")
    assert (policy.triage_days, policy.acknowledge_days, policy.dispute_days,
            policy.warning_share, policy.escalation_level2_days,
            policy.incomplete_archive_days, policy.resolution_class) == (
        3, 5, 10, 0.8, 5, 30, "light")


def test_demo_overrides(demo: Catalog) -> None:
    assert demo.policy("SWL").acknowledge_days == 3
    assert demo.policy("SWL", "SWL-INSPEKTORAT", "asn-pungli").resolve_days == 30
    assert demo.policy("SWL", "SWL-INSPEKTORAT", "asn-netralitas").resolve_days == 60
    bkpsdm = demo.policy("SWL", "SWL-BKPSDM", "asn-absen")
    assert (bkpsdm.resolve_days, bkpsdm.warning_share, bkpsdm.acknowledge_days) == (4, 0.75, 3)


LAYERED = """\
defaults:
  policy:
    triage_days: 4
    acknowledge_days: 6
    dispute_days: 12
    warning_share: 0.7
    resolve_days: {light: 3, investigation: 50}
categories:
  - {code: pungli, name_id: Pungli, name_en: Illegal fees, group: asn,
     resolution_class: investigation}
  - {code: sampah, name_id: Sampah, name_en: Waste, group: service, resolution_class: light}
regions:
  - code: AAA
    name: Kota A
    timezone: Asia/Makassar
    policy:
      acknowledge_days: 7
      dispute_days: 11
  - code: BBB
    name: Kota B
    timezone: Asia/Makassar
agencies:
  - code: AAA-INSP
    region: AAA
    name: Inspektorat Kota A
    short_name: Inspektorat
    policy:
      acknowledge_days: 8
      resolve_days: {investigation: 40, light: 1}
    category_policies:
      pungli: {resolve_days: 20, warning_share: 0.5}
  - code: BBB-INSP
    region: BBB
    name: Inspektorat Kota B
    short_name: Inspektorat
"""


def test_policy_override_order() -> None:
    cat = parse_catalog(LAYERED)
    # National defaults, then the catalog's defaults block.
    base = cat.policy("BBB")
    assert (base.triage_days, base.acknowledge_days, base.dispute_days, base.warning_share,
            base.escalation_level2_days, base.resolve_days) == (4, 6, 12, 0.7, 5, 5)
    assert cat.policy("BBB", "BBB-INSP", "pungli").resolve_days == 50
    assert cat.policy("BBB", None, "sampah").resolve_days == 3
    # Then the region.
    region = cat.policy("AAA", None, "pungli")
    assert (region.acknowledge_days, region.dispute_days, region.resolve_days) == (7, 11, 50)
    # Then the agency.
    agency = cat.policy("AAA", "AAA-INSP", "sampah")
    assert (agency.acknowledge_days, agency.dispute_days, agency.resolve_days,
            agency.warning_share) == (8, 11, 1, 0.7)
    # Then (agency, category).
    both = cat.policy("AAA", "AAA-INSP", "pungli")
    assert (both.acknowledge_days, both.dispute_days, both.resolve_days,
            both.warning_share, both.triage_days) == (8, 11, 20, 0.5, 4)
    assert both.resolution_class == "investigation"


def test_policy_is_frozen_and_checks_its_codes(demo: Catalog) -> None:
    policy = demo.policy("MDN")
    with pytest.raises(ValidationError):
        policy.resolve_days = 1  # type: ignore[misc]
    with pytest.raises(UnknownCode, match="not in region"):
        demo.policy("MDN", "SRG-DLH")
    with pytest.raises(UnknownCode):
        demo.policy("MDN", None, "no-such-category")
    with pytest.raises(UnknownCode):
        demo.policy("XXX")


def test_defaults_come_from_the_yaml_not_the_code() -> None:
    text = LAYERED.replace("acknowledge_days: 6", "acknowledge_days: 9")
    assert parse_catalog(text).policy("BBB").acknowledge_days == 9


# --- broken catalogs ---------------------------------------------------------------

MINIMAL = """\
audit_sample_share: 0.2
stats_min_cases: 3
categories:
  - code: asn-pungli
    name_id: Pungutan liar
    name_en: Illegal fees
    group: asn
    resolution_class: investigation
  - code: sampah
    name_id: Sampah
    name_en: Waste
    group: service
    resolution_class: light
regions:
  - code: MDN
    name: Kota Medan
    timezone: Asia/Jakarta
  - code: SRG
    name: Kota Sorong
    timezone: Asia/Jayapura
agencies:
  - code: MDN-INSPEKTORAT
    region: MDN
    name: Inspektorat Kota Medan
    short_name: Inspektorat
  - code: SRG-DLH
    region: SRG
    name: Dinas Lingkungan Hidup Kota Sorong
    short_name: DLH
rules:
  - region: MDN
    agency: MDN-INSPEKTORAT
    categories: [asn-pungli]
  - region: MDN
    agency: MDN-INSPEKTORAT
    keywords: [pungli]
"""


def _write(tmp_path: Path, text: str) -> tuple[Path, int]:
    """Write the catalog; the expected error line is the one marked ``#!``."""
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    marked = [i for i, line in enumerate(text.splitlines(), 1) if "#!" in line]
    return path, (marked[0] if marked else 1)


def _fails(tmp_path: Path, text: str, *needles: str) -> CatalogError:
    path, line = _write(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    error = info.value
    first = str(error).splitlines()[0]
    assert first.startswith(f"{path}:{line}: "), str(error)
    assert error.line == line
    for needle in needles:
        assert needle in first, first
    return error


def test_minimal_catalog_loads(tmp_path: Path) -> None:
    path, _ = _write(tmp_path, MINIMAL)
    cat = load_catalog(path)
    assert cat.audit_sample_share == 0.2 and cat.stats_min_cases == 3
    assert cat.route("MDN", "asn-pungli", "").agency == "MDN-INSPEKTORAT"
    assert cat.route("SRG", "sampah", "pungli").rule == "triage"


def test_unknown_time_zone(tmp_path: Path) -> None:
    text = MINIMAL.replace("    timezone: Asia/Jayapura",
                           "    timezone: Asia/Sorong  #!")
    _fails(tmp_path, text, "regions[1].timezone", "unknown IANA time zone 'Asia/Sorong'")


def test_unknown_agency_in_a_rule(tmp_path: Path) -> None:
    text = MINIMAL.replace("    agency: MDN-INSPEKTORAT\n    keywords",
                           "    agency: MDN-INSPEKTURAT  #!\n    keywords")
    _fails(tmp_path, text, "rules[1].agency", "unknown agency 'MDN-INSPEKTURAT'")


def test_rule_agency_of_another_region(tmp_path: Path) -> None:
    text = MINIMAL.replace("    agency: MDN-INSPEKTORAT\n    keywords",
                           "    agency: SRG-DLH  #!\n    keywords")
    _fails(tmp_path, text, "rules[1].agency", "belongs to SRG, not to MDN")


def test_rule_unknown_category_and_region(tmp_path: Path) -> None:
    text = MINIMAL.replace("    categories: [asn-pungli]",
                           "    categories: [asn-pungli, no-such]  #!")
    _fails(tmp_path, text, "rules[0].categories[1]", "unknown category 'no-such'")
    text = MINIMAL.replace("  - region: MDN\n    agency: MDN-INSPEKTORAT\n    keywords",
                           "  - region: XYZ  #!\n    agency: MDN-INSPEKTORAT\n    keywords")
    _fails(tmp_path, text, "rules[1].region", "unknown region 'XYZ'")


def test_agency_unknown_region(tmp_path: Path) -> None:
    text = MINIMAL.replace("    region: SRG\n", "    region: SOR  #!\n")
    _fails(tmp_path, text, "agencies[1].region", "unknown region 'SOR'")


def test_duplicate_agency_code(tmp_path: Path) -> None:
    text = MINIMAL.replace("  - code: SRG-DLH\n", "  - code: MDN-INSPEKTORAT  #!\n")
    text = text.replace("    region: SRG\n    name: Dinas", "    region: MDN\n    name: Dinas")
    _fails(tmp_path, text, "agencies[1].code", "duplicate agency code 'MDN-INSPEKTORAT'")


def test_duplicate_region_and_category_codes(tmp_path: Path) -> None:
    text = MINIMAL.replace("  - code: SRG\n", "  - code: MDN  #!\n")
    _fails(tmp_path, text, "duplicate region code 'MDN'")
    text = MINIMAL.replace("  - code: sampah\n", "  - code: asn-pungli  #!\n")
    _fails(tmp_path, text, "duplicate category code 'asn-pungli'")


def test_duplicate_rule_and_keyword(tmp_path: Path) -> None:
    text = MINIMAL + "  - {region: MDN, agency: MDN-INSPEKTORAT, categories: [asn-pungli]}  #!\n"
    _fails(tmp_path, text, "a rule for MDN/asn-pungli exists already")
    text = MINIMAL + "  - {region: MDN, agency: MDN-INSPEKTORAT, keywords: [PUNGLI]}  #!\n"
    _fails(tmp_path, text, "keyword 'pungli' is already routed in MDN")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    text = MINIMAL.replace("    name: Kota Sorong\n",
                           "    name: Kota Sorong\n    name: Sorong  #!\n")
    _fails(tmp_path, text, "duplicate key 'name'")


def test_bad_resolution_class(tmp_path: Path) -> None:
    text = MINIMAL.replace("    resolution_class: light",
                           "    resolution_class: quick  #!")
    _fails(tmp_path, text, "categories[1].resolution_class", "'investigation'")


@pytest.mark.parametrize("share", ["0", "1", "1.5", "-0.2"])
def test_warning_share_out_of_range(tmp_path: Path, share: str) -> None:
    text = MINIMAL + f"defaults:\n  policy:\n    warning_share: {share}  #!\n"
    _fails(tmp_path, text, "defaults.policy.warning_share")


def test_warning_share_in_an_agency_override(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "    short_name: DLH\n",
        "    short_name: DLH\n    category_policies:\n      sampah:\n"
        "        warning_share: 1.0  #!\n")
    _fails(tmp_path, text, "agencies[1].category_policies.sampah.warning_share")


def test_yaml_syntax_error(tmp_path: Path) -> None:
    text = MINIMAL.replace("    name: Kota Sorong", "    name: Kota: Sorong  #!")
    _fails(tmp_path, text, "YAML syntax error")
    text = MINIMAL.replace("    categories: [asn-pungli]",
                           "    categories: [asn-pungli\n  - region: MDN  #!")
    _fails(tmp_path, text, "YAML syntax error", "started on line")


def test_missing_and_unknown_keys(tmp_path: Path) -> None:
    text = MINIMAL.replace("  - code: SRG\n    name: Kota Sorong\n    timezone: Asia/Jayapura\n",
                           "  - code: SRG  #!\n    name: Kota Sorong\n")
    _fails(tmp_path, text, "regions[1].timezone", "Field required")
    text = MINIMAL.replace("    short_name: DLH\n", "    short_name: DLH\n    kepala: X  #!\n")
    _fails(tmp_path, text, "agencies[1].kepala", "Extra inputs are not permitted")


def test_bad_days_off(tmp_path: Path) -> None:
    text = MINIMAL.replace("    timezone: Asia/Jayapura\n",
                           "    timezone: Asia/Jayapura\n    days_off: [2026-02-30]  #!\n")
    _fails(tmp_path, text, "invalid date '2026-02-30'")
    text = MINIMAL.replace("    timezone: Asia/Jayapura\n",
                           "    timezone: Asia/Jayapura\n    annual_days_off: ['13-01']  #!\n")
    _fails(tmp_path, text, "regions[1].annual_days_off", "not MM-DD")


def test_single_resolve_days_only_per_category(tmp_path: Path) -> None:
    text = MINIMAL.replace("    short_name: DLH\n",
                           "    short_name: DLH\n    policy:\n      resolve_days: 4  #!\n")
    _fails(tmp_path, text, "agencies[1].policy.resolve_days", "must map resolution classes")


def test_rule_needs_exactly_one_kind(tmp_path: Path) -> None:
    text = MINIMAL + "  - {region: SRG, agency: SRG-DLH}  #!\n"
    _fails(tmp_path, text, "rules[2]", "either `categories` or `keywords`")


def test_every_problem_is_reported_sorted_by_line(tmp_path: Path) -> None:
    text = (MINIMAL.replace("    timezone: Asia/Jakarta", "    timezone: Mars/Olympus  #!")
            .replace("    region: SRG\n", "    region: SOR\n"))
    error = _fails(tmp_path, text, "Mars/Olympus")
    # Shape errors stop before cross-references are checked; fix the shape and the
    # cross-reference error shows.
    assert len(error.problems) == 1
    text = text.replace("Mars/Olympus  #!", "Asia/Jakarta").replace(
        "    region: SOR\n", "    region: SOR  #!\n").replace(
        "    agency: MDN-INSPEKTORAT\n    keywords", "    agency: NOPE\n    keywords")
    error = _fails(tmp_path, text, "unknown region 'SOR'")
    assert len(error.problems) == 2
    assert "unknown agency 'NOPE'" in str(error).splitlines()[1]


def test_empty_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    _fails(tmp_path, "", "the catalog is empty")
    _fails(tmp_path, "- just\n- a list\n", "must be a mapping")
    missing = tmp_path / "nope.yaml"
    with pytest.raises(CatalogError, match=rf"^{missing}:1: cannot read the catalog"):
        load_catalog(missing)


def test_catalog_error_is_a_value_error() -> None:
    # Services fail at start on a bad catalog the same way as on a bad setting.
    with pytest.raises(ValueError, match=r"^x\.yaml:1: "):
        parse_catalog("", "x.yaml")


# --- the command -------------------------------------------------------------------

def test_cli_check_route_and_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from awasi.cli import main

    assert main(["catalog", "check", str(DEMO_CATALOG)]) == 0
    out = capsys.readouterr().out
    assert "ok: 5 regions" in out and "SRG  Kota Sorong  (Asia/Jayapura" in out

    assert main(["catalog", "route", "MDN", "lainnya", "Jalan  berlubang",
                 "--catalog", str(DEMO_CATALOG)]) == 0
    assert capsys.readouterr().out.strip() == "MDN-PUPR  (keyword:MDN:jalan berlubang)"

    assert main(["catalog", "policy", "SRG", "--category", "asn-pungli",
                 "--catalog", str(DEMO_CATALOG), "--from", "2026-11-20T23:30:00+09:00"]) == 0
    out = capsys.readouterr().out
    assert "resolve_days: 60" in out
    assert "acknowledge due: 2026-11-28T00:00:00+09:00" in out

    path, _ = _write(tmp_path, MINIMAL.replace("Asia/Jayapura", "Asia/Sorong"))
    assert main(["catalog", "check", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"{path}:20: regions[1].timezone")


def test_resolve_days_errors_point_into_the_map(tmp_path: Path) -> None:
    text = MINIMAL + ("defaults:\n  policy:\n    resolve_days:\n"
                      "      light: 2\n      severe: 9  #!\n")
    error = _fails(tmp_path, text, "defaults.policy.resolve_days.severe", "'investigation'")
    assert len(error.problems) == 1  # not also "should be an integer" for the other branch
    text = MINIMAL + "defaults:\n  policy:\n    resolve_days: lama  #!\n"
    error = _fails(tmp_path, text, "defaults.policy.resolve_days", "must map resolution classes")
    assert len(error.problems) == 1


def test_every_demo_keyword_reaches_its_agency(demo: Catalog) -> None:
    for rule in demo.document.rules:
        for keyword in rule.keywords:
            text = f"Laporan warga: {keyword.upper()} di dekat rumah."
            assert demo.route(rule.region, "lainnya", text).agency == rule.agency, keyword
