"""The search box's words as full-text queries (awasi/textsearch.py)."""

from __future__ import annotations

from awasi import textsearch


def test_prefix_query_keeps_letters_and_digits_only() -> None:
    assert textsearch.prefix_query("Jalan  RUSAK! jalan") == "'jalan':* & 'rusak':*"
    assert textsearch.prefix_query("'); DROP --") == "'drop':*"
    assert textsearch.prefix_query("!!! ...") is None
