"""Words typed into a search box, as a PostgreSQL full-text query.

The ``simple`` configuration throughout: PostgreSQL ships no Indonesian stemmer,
and another language's would mangle Indonesian words; ``simple`` only lower-cases.
Every word is matched as a prefix (``'jal':*`` finds "jalan", "jalanan"), so a
partly typed word still finds its tickets, and all words must match.
"""

from __future__ import annotations

import re

# Letters and digits only (``[^\\W_]``): nothing of tsquery's syntax (quotes, & | ! :
# parentheses) can reach the query, so the words are safe inside it as they are.
_WORD = re.compile(r"[^\W_]+")
MAX_WORDS = 8


def words(text: str) -> list[str]:
    """The distinct words of ``text`` (letters and digits, lower case, first
    ``MAX_WORDS``), in order."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(text.lower()):
        seen.setdefault(w, None)
        if len(seen) == MAX_WORDS:
            break
    return list(seen)


def prefix_query(text: str) -> str | None:
    """``to_tsquery('simple', ...)`` text matching every word of ``text`` as a
    prefix (at most ``MAX_WORDS`` words, first ones kept), or None if ``text`` has
    no word at all."""
    return " & ".join(f"'{w}':*" for w in words(text)) or None


def sql_query(param: str) -> str:
    """The SQL tsquery for ``param``, a parameter holding ``prefix_query``'s text.

    Two readings ORed: the words through the parser (as the tickets' text was
    parsed) and the same words as lexemes as they are. Both are needed because the
    parser reads a word by its context: in "AWS-08E523B6" (a tracking code) the
    text keeps ``08e523b6`` as one lexeme, but alone the parser reads "08e523b6" as
    the number ``08e523`` followed by ``b6``, so the parsed query missed the code
    (seen in CI for about one code in fifty). A standalone odd token in a text is
    split the parser's way, which the first reading finds. When both readings are
    the same (nearly always) the query is just that one: an OR of two equal queries
    doubled the planner's estimate and the index's work (search at a million tickets
    went from 14 to 171 ms p50, bench/scale.py). Every part is immutable, so the
    planner folds the choice into a constant for each search's own plan."""
    parsed = f"to_tsquery('simple', {param})"
    return (f"(CASE WHEN {parsed} = {param}::tsquery THEN {param}::tsquery"
            f" ELSE {parsed} || {param}::tsquery END)")


def like_patterns(text: str) -> tuple[str, ...]:
    """``LIKE`` patterns finding each word of ``text`` anywhere (``%word%``): for
    pg_trgm's index where the server has it. Words hold no ``%`` or ``_``."""
    return tuple(f"%{w}%" for w in words(text))
