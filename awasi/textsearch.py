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


# What separates words, for PostgreSQL: anything but a letter or digit, as ``_WORD``
# in Python (the database's character classes are Unicode ones, C.UTF-8 or a UTF-8
# locale). The router's search column (migration 1400) splits its text with it.
SEPARATORS = "[^[:alnum:]]+"


def sql_document(text_sql: str) -> str:
    """The tsvector of the SQL text ``text_sql`` in the search box's words: split at
    every separator first, so that the parser reads each word alone, exactly as it
    reads the same word typed in a query. Left to itself the parser reads a word by
    its neighbours ("AWS-06005195" gave the signed number ``-06005195``), and a
    word typed alone then never matched its text. The router's stored column is this
    expression (migration 1400; a test holds the two equal)."""
    return f"to_tsvector('simple', regexp_replace({text_sql}, '{SEPARATORS}', ' ', 'g'))"


def sql_query(param: str) -> str:
    """The SQL tsquery for ``param``, a parameter holding ``prefix_query``'s text.

    Each word goes through the parser as the text's words did (``sql_document``),
    so both read it alike. A word the parser splits ("08e523b6" reads as the number
    ``08e523`` followed by ``b6``) becomes a phrase of its parts, which the text
    holds side by side."""
    return f"to_tsquery('simple', {param})"


def like_patterns(text: str) -> tuple[str, ...]:
    """``LIKE`` patterns finding each word of ``text`` anywhere (``%word%``): for
    pg_trgm's index where the server has it. Words hold no ``%`` or ``_``."""
    return tuple(f"%{w}%" for w in words(text))
