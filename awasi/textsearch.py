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


def scoped(scope: str, query: str) -> str:
    """``query`` (as ``prefix_query`` made it) with every word scoped as
    ``SCOPE:word``: the lexemes of an index over words scoped by their ticket's
    agency (the router's ``scoped_words``), as a ``tsquery`` literal (cast, not given
    to ``to_tsquery``, which would lower-case and split the scope). Raises
    ``ValueError`` for a scope that is no agency code (``[A-Z0-9]`` and ``-``) or a
    query this module did not make."""
    if not _SCOPE.fullmatch(scope):
        raise ValueError(f"not a scope: {scope!r}")
    terms = query.split(" & ")
    if not all(_TERM.fullmatch(t) for t in terms):
        raise ValueError(f"not a prefix query: {query!r}")
    return " & ".join(f"'{scope}:{t[1:]}" for t in terms)


_SCOPE = re.compile(r"[A-Z0-9]+(-[A-Z0-9]+)*")
_TERM = re.compile(r"'[^\W_]+':\*")


def like_patterns(text: str) -> tuple[str, ...]:
    """``LIKE`` patterns finding each word of ``text`` anywhere (``%word%``): for
    pg_trgm's index where the server has it. Words hold no ``%`` or ``_``."""
    return tuple(f"%{w}%" for w in words(text))
