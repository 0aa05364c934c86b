"""The public satisfaction index (Indeks Kepuasan Masyarakat, IKM) of PermenPAN-RB
No. 14/2017, as exact arithmetic, and the Krejcie-Morgan sample size.

The one place the formula lives: intake, oversight, the reports and the demo all call
these functions.

- Each element U1..U9 is answered 1-4. An element's mean is the sum of its answers
  divided by the number of respondents (kept as a ``Fraction``: no rounding).
- IKM = (U1 mean + ... + U9 mean) / 9 x 25: equal weights of exactly 1/9. The
  regulation's worked example writes the weight as 0.111; ``0.111 x 9 = 0.999``,
  which lowers every index by 0.1 % and can move a unit down a grade at the
  boundaries (tests/test_evaluation_ikm.py shows one), so we never use it.
- Only the final figure is rounded, to 2 decimals, half-up (``ROUND_HALF_UP``, the
  rounding people learn at school and the one the regulation's tables show).
- Grades on the rounded index: A 88.31-100 "Sangat Baik", B 76.61-88.30 "Baik",
  C 65.00-76.60 "Kurang Baik", D 25.00-64.99 "Tidak Baik".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

ELEMENTS: tuple[str, ...] = ("U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8", "U9")
SCALE_MIN, SCALE_MAX = 1, 4
WEIGHT = Fraction(1, len(ELEMENTS))  # exactly 1/9
FACTOR = 25  # converts the 1-4 scale to 25-100
TWO_PLACES = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Grade:
    """A service quality grade (mutu pelayanan) and the index range it covers."""

    letter: str
    low: Decimal
    high: Decimal
    label_id: str
    label_en: str

    def label(self, locale: str) -> str:
        return self.label_en if locale.startswith("en") else self.label_id


GRADES: tuple[Grade, ...] = (
    Grade("A", Decimal("88.31"), Decimal("100.00"), "Sangat Baik", "Very good"),
    Grade("B", Decimal("76.61"), Decimal("88.30"), "Baik", "Good"),
    Grade("C", Decimal("65.00"), Decimal("76.60"), "Kurang Baik", "Poor"),
    Grade("D", Decimal("25.00"), Decimal("64.99"), "Tidak Baik", "Very poor"),
)


@dataclass(frozen=True, slots=True)
class Result:
    """The index of one set of responses: ``respondents``, each element's exact mean,
    the rounded ``index`` and its ``grade``. ``index``/``grade`` are None without
    respondents."""

    respondents: int
    means: Mapping[str, Fraction]
    index: Decimal | None
    grade: Grade | None


def round_half_up(value: Fraction | Decimal) -> Decimal:
    """``value`` to 2 decimals, half-up (exact for a ``Fraction``: no float on the way)."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)  # 28 digits, then
    return value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def exact_index(means: Sequence[Fraction]) -> Fraction:
    """The unrounded index of nine element means: their mean x 25."""
    if len(means) != len(ELEMENTS):
        raise ValueError(f"need {len(ELEMENTS)} element means, got {len(means)}")
    return sum((m * WEIGHT for m in means), Fraction(0)) * FACTOR


def grade_of(index: Decimal) -> Grade:
    """The grade of a rounded index (25.00-100.00). Raises ``ValueError`` outside."""
    for g in GRADES:
        if g.low <= index <= g.high:
            return g
    raise ValueError(f"an index of {index} is outside 25.00-100.00")


def from_sums(respondents: int, sums: Sequence[int]) -> Result:
    """The index from per-element answer sums over ``respondents`` (how oversight's
    rollups store them). Raises ``ValueError`` if a sum is impossible for that many
    respondents (each answer is 1-4)."""
    if len(sums) != len(ELEMENTS):
        raise ValueError(f"need {len(ELEMENTS)} element sums, got {len(sums)}")
    if respondents < 0:
        raise ValueError("respondents must not be negative")
    if respondents == 0:
        return Result(0, {}, None, None)
    for code, s in zip(ELEMENTS, sums, strict=True):
        if not SCALE_MIN * respondents <= s <= SCALE_MAX * respondents:
            raise ValueError(f"{code}: a sum of {s} is impossible for {respondents} answers")
    means = [Fraction(s, respondents) for s in sums]
    index = round_half_up(exact_index(means))
    return Result(respondents, dict(zip(ELEMENTS, means, strict=True)), index, grade_of(index))


def from_answers(responses: Iterable[Mapping[str, int]]) -> Result:
    """The index of individual responses, each ``{"U1": 1-4, ..., "U9": 1-4}``.
    Raises ``ValueError`` for a missing element or an answer outside 1-4."""
    sums = [0] * len(ELEMENTS)
    n = 0
    for response in responses:
        for i, code in enumerate(ELEMENTS):
            value = response[code] if code in response else None
            if not isinstance(value, int) or not SCALE_MIN <= value <= SCALE_MAX:
                raise ValueError(f"{code}: answer {value!r} is not 1-4")
            sums[i] += value
        n += 1
    return from_sums(n, sums)


def regulation_weighted_index(means: Sequence[Fraction]) -> Decimal:
    """The index as the regulation's example computes it, with the weight rounded to
    0.111. Only for comparison (tests, docs): never use it for a published figure."""
    weighted = sum((Decimal(m.numerator) / Decimal(m.denominator) * Decimal("0.111")
                    for m in means), Decimal(0))
    return round_half_up(weighted * FACTOR)


# --- sample size -------------------------------------------------------------------

# Krejcie & Morgan (1970): chi-square for 1 degree of freedom at 95 % (3.841), the
# population proportion 0.5 (the largest sample) and a 5 % margin of error.
_CHI2 = Fraction(3841, 1000)
_P = Fraction(1, 2)
_D = Fraction(5, 100)


def krejcie_morgan(population: int) -> int:
    """The sample size the Krejcie-Morgan formula asks for a population of
    ``population`` people, rounded to the nearest whole number as the authors'
    published table is (50 -> 44, 100 -> 80, 1,000 -> 278, 1,000,000 -> 384).
    Raises ``ValueError`` for a population below 1."""
    if population < 1:
        raise ValueError("the population must be at least 1")
    n = Fraction(population)
    s = _CHI2 * n * _P * (1 - _P) / (_D * _D * (n - 1) + _CHI2 * _P * (1 - _P))
    return min(population, math.floor(s + Fraction(1, 2)))
