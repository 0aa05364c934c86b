"""The search box's words as full-text queries (awasi/textsearch.py): plain, and
scoped by an agency for the router's index of agency-scoped words."""

from __future__ import annotations

import pytest

from awasi import textsearch


def test_prefix_query_keeps_letters_and_digits_only() -> None:
    assert textsearch.prefix_query("Jalan  RUSAK! jalan") == "'jalan':* & 'rusak':*"
    assert textsearch.prefix_query("'); DROP --") == "'drop':*"
    assert textsearch.prefix_query("!!! ...") is None


def test_scoped_puts_the_agency_before_every_word() -> None:
    q = textsearch.prefix_query("jembatan aws 1a2b")
    assert q is not None
    assert textsearch.scoped("MDN-PUPR", q) == (
        "'MDN-PUPR:jembatan':* & 'MDN-PUPR:aws':* & 'MDN-PUPR:1a2b':*")


@pytest.mark.parametrize("scope", ["mdn-pupr", "MDN PUPR", "MDN'PUPR", "", "MDN-", "-X"])
def test_scoped_refuses_what_is_no_agency_code(scope: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        textsearch.scoped(scope, "'jalan':*")


@pytest.mark.parametrize("query", ["jalan", "'jalan'", "'jal an':*", "'x':* | 'y':*"])
def test_scoped_refuses_a_query_it_did_not_make(query: str) -> None:
    with pytest.raises(ValueError, match="prefix query"):
        textsearch.scoped("MDN-PUPR", query)
