"""How alike two complaints read and lie: the one scoring rule behind the similar
reports a citizen is offered while filing (intake) and the possible duplicates staff
see on a ticket (the router).

Each service runs it over its own rows (services never read each other's schema);
this module only writes the SQL fragments and the query words, so both rank the same
way. Text similarity is pg_trgm's trigram ``similarity`` where the database has the
extension, else PostgreSQL's built-in full-text rank (``ts_rank``, ``simple``
configuration; the embedded pgserver build ships no contrib modules). When both
sides have a pin, a candidate at the same spot scores up to twice its text score,
one ``RADIUS_KM`` or more away only its text score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

# Beyond this, a location adds nothing to the ranking (a different neighbourhood).
RADIUS_KM = 5.0
MAX_TERMS = 16
# A complaint's text as both services store it.
DOC = "(coalesce(title, '') || ' ' || description)"
_WORD = re.compile(r"[0-9a-z]{3,}")


def search_terms(text: str) -> list[str]:
    """The words of ``text`` worth matching (3+ letters or digits, lower case, at most
    ``MAX_TERMS``, first occurrence order): safe to put in a tsquery as they are."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(text.lower()):
        seen.setdefault(w, None)
        if len(seen) == MAX_TERMS:
            break
    return list(seen)


def query_text(terms: list[str], trigram: bool) -> str:
    """The text (trigram) or tsquery (full text, any word matches) for ``terms``."""
    return " ".join(terms) if trigram else " | ".join(terms)


async def has_trigram(pool: asyncpg.Pool) -> bool:
    """Whether pg_trgm is installed in this database (decided once, at start)."""
    return bool(await pool.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))


def distance_sql(lat: str, lon: str, row_lat: str = "lat", row_lon: str = "lon") -> str:
    """Kilometres between the point (``lat``, ``lon``) and the row's point."""
    # Equirectangular approximation: exact enough within a city, and cheap.
    return (f"sqrt(power(({lat} - {row_lat}) * 111.2, 2) + power(({lon} - {row_lon}) * 111.2"
            f" * cos(radians({lat})), 2))")


@dataclass(frozen=True, slots=True)
class Fragments:
    """SQL pieces for scoring candidate rows that have a ``doc_text`` expression:
    ``doc`` goes in a ``LATERAL (SELECT ...)`` (computed once per row), ``match``
    keeps rows that share anything, ``score`` is the text score, ``near`` multiplies
    it by the closeness factor (empty without a point)."""

    doc: str
    match: str
    score: str
    near: str


def fragments(doc_text: str, query: str, trigram: bool, point: tuple[str, str] | None = None,
              row_point: tuple[str, str] = ("lat", "lon")) -> Fragments:
    """``doc_text``: the SQL text of a candidate; ``query``: the parameter holding
    ``query_text``; ``point``: the parameters of the new complaint's pin, if any;
    ``row_point``: the candidate's lat/lon expressions (NULL when it has none)."""
    if trigram:
        doc = f"{doc_text} AS doc"
        match = f"doc OPERATOR(public.%) {query}"
        score = f"public.similarity(doc, {query})"
    else:
        doc = f"to_tsvector('simple', {doc_text}) AS doc"
        match = f"doc @@ to_tsquery('simple', {query})"
        score = f"ts_rank(doc, to_tsquery('simple', {query}))"
    near = ""
    if point is not None:
        lat, lon = row_point
        near = (f" * (1 + CASE WHEN {lat} IS NULL OR {lon} IS NULL THEN 0 ELSE greatest(0, 1 - "
                f"{distance_sql(point[0], point[1], lat, lon)} / {RADIUS_KM}) END)")
    return Fragments(doc=doc, match=match, score=score, near=near)
