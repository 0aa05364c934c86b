"""The satisfaction index (awasi.ikm) and periods (awasi.periods), hand-computed.

Every expected figure here was worked out by hand from PermenPAN-RB 14/2017:
IKM = (sum of the nine element means) / 9 x 25, rounded half-up to 2 decimals only
at the end; grades A 88.31-100, B 76.61-88.30, C 65.00-76.60, D 25.00-64.99.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from awasi import ikm
from awasi.periods import BadPeriod, Period, current_quarter, local_day


def sums_for(total: int, n: int) -> list[int]:
    """Spread a total answer sum over the nine elements (each within n..4n)."""
    base, extra = divmod(total, 9)
    sums = [base + (1 if i < extra else 0) for i in range(9)]
    assert all(n <= s <= 4 * n for s in sums)
    return sums


def test_a_small_survey_by_hand() -> None:
    # Four respondents. Element sums: U1 3+3+4+2=12 (mean 3), U2 4+4+4+4=16 (4),
    # U3 1+2+2+2=7 (1.75), U4 4+4+4+4=16 (4), U5 3+3+3+3=12 (3), U6 3+4+3+4=14 (3.5),
    # U7 4+4+4+3=15 (3.75), U8 2+2+3+3=10 (2.5), U9 3+3+3+2=11 (2.75).
    # Sum of means 28.25; / 9 = 3.13888...; x 25 = 78.4722... -> 78.47, grade B.
    rows = [
        [3, 4, 1, 4, 3, 3, 4, 2, 3],
        [3, 4, 2, 4, 3, 4, 4, 2, 3],
        [4, 4, 2, 4, 3, 3, 4, 3, 3],
        [2, 4, 2, 4, 3, 4, 3, 3, 2],
    ]
    result = ikm.from_answers([dict(zip(ikm.ELEMENTS, r, strict=True)) for r in rows])
    assert result.respondents == 4
    assert result.means["U3"] == Fraction(7, 4)
    assert result.means["U9"] == Fraction(11, 4)
    assert result.index == Decimal("78.47")
    assert result.grade is not None and result.grade.letter == "B"
    assert result.grade.label("id") == "Baik"


def test_everyone_answers_the_same() -> None:
    assert ikm.from_sums(7, [7 * 4] * 9).index == Decimal("100.00")
    assert ikm.from_sums(7, [7 * 1] * 9).index == Decimal("25.00")
    three = ikm.from_sums(7, [7 * 3] * 9)
    assert three.index == Decimal("75.00")
    assert three.grade is not None and three.grade.label("id") == "Kurang Baik"


def test_the_regulations_0111_weight_would_give_a_lower_grade() -> None:
    # Ten respondents, answer sums 276 over the nine elements: the element means add
    # up to 27.6. Exact: 27.6 / 9 x 25 = 76.666... -> 76.67, grade B ("Baik").
    # With the weight rounded to 0.111: 27.6 x 0.111 = 3.0636; x 25 = 76.59, grade C:
    # 0.111 x 9 = 0.999 takes 0.1 % off every index, here 0.077 points, across 76.61.
    sums = sums_for(276, 10)
    exact = ikm.from_sums(10, sums)
    assert exact.index == Decimal("76.67")
    assert exact.grade is not None and exact.grade.letter == "B"
    rough = ikm.regulation_weighted_index([Fraction(s, 10) for s in sums])
    assert rough == Decimal("76.59")
    assert ikm.grade_of(rough).letter == "C"


@pytest.mark.parametrize(("n", "total", "index", "grade"), [
    # index = total / n / 9 x 25, chosen to land exactly on each boundary.
    (1000, 27576, "76.60", "C"),     # 27.576 / 9 x 25 = 76.60
    (100, 2758, "76.61", "B"),       # 27.58 / 9 x 25 = 76.6111... -> 76.61
    (1000, 31788, "88.30", "B"),     # 31.788 / 9 x 25 = 88.30
    (10000, 317916, "88.31", "A"),   # 31.7916 / 9 x 25 = 88.31
    (10, 234, "65.00", "C"),         # 23.4 / 9 x 25 = 65.00
    (10000, 233964, "64.99", "D"),   # 23.3964 / 9 x 25 = 64.99
])
def test_grade_boundaries(n: int, total: int, index: str, grade: str) -> None:
    result = ikm.from_sums(n, sums_for(total, n))
    assert result.index == Decimal(index)
    assert result.grade is not None and result.grade.letter == grade


def test_only_the_final_figure_is_rounded_half_up() -> None:
    # 5000 respondents, sum 137,889: 27.5778 / 9 x 25 = 76.605 exactly. Half-up gives
    # 76.61 (B); banker's rounding would give 76.60 (C), and rounding each element mean
    # to 2 decimals first would move it too.
    result = ikm.from_sums(5000, sums_for(137889, 5000))
    assert ikm.exact_index(list(result.means.values())) == Fraction(76605, 1000)
    assert result.index == Decimal("76.61")
    assert result.grade is not None and result.grade.letter == "B"


def test_no_respondents_no_index() -> None:
    result = ikm.from_sums(0, [0] * 9)
    assert result.index is None and result.grade is None


def test_impossible_input_is_refused() -> None:
    with pytest.raises(ValueError, match="U5"):
        ikm.from_answers([{c: 3 for c in ikm.ELEMENTS if c != "U5"}])
    with pytest.raises(ValueError, match="U1"):
        ikm.from_answers([{**{c: 3 for c in ikm.ELEMENTS}, "U1": 5}])
    with pytest.raises(ValueError, match="impossible"):
        ikm.from_sums(2, [9] * 9)
    with pytest.raises(ValueError):
        ikm.grade_of(Decimal("24.99"))


@pytest.mark.parametrize(("population", "sample"), [
    (1, 1), (10, 10), (50, 44), (100, 80), (500, 217), (1000, 278), (10_000, 370),
    (100_000, 383), (1_000_000, 384),
])
def test_krejcie_morgan_matches_the_published_table(population: int, sample: int) -> None:
    assert ikm.krejcie_morgan(population) == sample


def test_krejcie_morgan_needs_a_population() -> None:
    with pytest.raises(ValueError):
        ikm.krejcie_morgan(0)


def test_grade_labels_follow_the_locale() -> None:
    # Bahasa Indonesia first: the regulation's own words, English for an "en*" locale.
    a = ikm.grade_of(Decimal("100.00"))
    assert (a.letter, a.label("id"), a.label("id-ID")) == ("A", "Sangat Baik", "Sangat Baik")
    assert a.label("en") == "Very good" and a.label("en-GB") == "Very good"
    d = ikm.grade_of(Decimal("25.00"))
    assert (d.letter, d.label("id"), d.label("en")) == ("D", "Tidak Baik", "Very poor")


def test_no_respondents_is_an_empty_result_not_an_error() -> None:
    result = ikm.from_sums(0, [0] * 9)
    assert result == ikm.Result(0, {}, None, None)
    assert ikm.from_answers([]) == ikm.Result(0, {}, None, None)


def test_the_result_names_each_elements_mean() -> None:
    result = ikm.from_sums(2, [2, 3, 4, 5, 6, 7, 8, 8, 8])
    assert list(result.means) == list(ikm.ELEMENTS)
    assert result.means["U1"] == 1 and result.means["U2"] == Fraction(3, 2)
    assert result.means["U9"] == 4


def test_each_refusal_says_why() -> None:
    with pytest.raises(ValueError, match=r"^need 9 element means, got 8$"):
        ikm.exact_index([Fraction(3)] * 8)
    with pytest.raises(ValueError, match=r"^need 9 element sums, got 10$"):
        ikm.from_sums(1, [3] * 10)
    with pytest.raises(ValueError, match=r"^respondents must not be negative$"):
        ikm.from_sums(-1, [0] * 9)
    # A sum below one point per answer is impossible too, even when the other
    # elements would lift the index into a grade (here 90.28, an A).
    with pytest.raises(ValueError, match=r"^U1: a sum of 1 is impossible for 2 answers$"):
        ikm.from_sums(2, [1] + [8] * 8)
    with pytest.raises(ValueError, match=r"^an index of 100\.01 is outside 25\.00-100\.00$"):
        ikm.grade_of(Decimal("100.01"))
    with pytest.raises(ValueError, match=r"^the population must be at least 1$"):
        ikm.krejcie_morgan(0)


# --- periods ---------------------------------------------------------------------------

def test_periods_parse_and_span() -> None:
    q4 = Period.parse("2026-Q4")
    assert (q4.first_day, q4.last_day) == (date(2026, 10, 1), date(2026, 12, 31))
    h1 = Period.parse("2026-H1")
    assert (h1.first_day, h1.last_day) == (date(2026, 1, 1), date(2026, 6, 30))
    year = Period.parse("2026")
    assert (year.first_day, year.last_day) == (date(2026, 1, 1), date(2026, 12, 31))
    assert Period.parse("2026-Q1").previous().code == "2025-Q4"
    assert Period.parse("2026-H2").previous().code == "2026-H1"
    assert year.previous().code == "2025"
    for bad in ("2026-Q5", "2026-H3", "26", "2026Q4", "", "2026-q4x"):
        with pytest.raises(BadPeriod):
            Period.parse(bad)


def test_one_instant_two_quarters_across_wib_and_wit() -> None:
    # 30 Sept 2026, 16:30 UTC: 23:30 WIB (Medan, UTC+7) but 01:30 WIT on 1 October
    # (Sorong, UTC+9).
    instant = datetime(2026, 9, 30, 16, 30, tzinfo=UTC)
    assert local_day(instant, "Asia/Jakarta") == date(2026, 9, 30)
    assert local_day(instant, "Asia/Jayapura") == date(2026, 10, 1)
    assert current_quarter(instant, "Asia/Jakarta").code == "2026-Q3"
    assert current_quarter(instant, "Asia/Jayapura").code == "2026-Q4"
    start, end = Period.parse("2026-Q4").bounds("Asia/Jayapura")
    assert start == datetime(2026, 9, 30, 15, 0, tzinfo=UTC)
    assert end == datetime(2026, 12, 31, 15, 0, tzinfo=UTC)
