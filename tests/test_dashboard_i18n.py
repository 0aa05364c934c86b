"""Every message the oversight pages show has a Bahasa Indonesia translation (and an
English entry), and the codes shown through _() (queue reasons, outcomes, types) too."""

from __future__ import annotations

import re
from pathlib import Path

from awasi.events.payloads import FindingOutcome, MaladministrationType
from awasi.i18n import Catalogs
from services.oversight.app import LOCALE_DIR

ROOT = Path(__file__).resolve().parent.parent / "services" / "oversight"
MSG = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def messages() -> set[str]:
    found: set[str] = set()
    for path in [*sorted((ROOT / "templates").glob("*.html")), ROOT / "pages.py"]:
        for m in MSG.finditer(path.read_text()):
            found.add(m.group(1) or m.group(2))
    codes = {"breach", "dispute", "low_rating", "audit_sample", "claim", "findings", "reopen",
             "confirm", "cancel", "amend", "withdraw", "release",
             *FindingOutcome.__args__, *MaladministrationType.__args__}  # type: ignore[attr-defined]
    return found | codes


def test_indonesian_and_english_catalogs_are_complete() -> None:
    found = messages()
    assert len(found) > 60  # the extraction works
    catalogs = Catalogs(LOCALE_DIR)
    assert catalogs.missing("id", iter(sorted(found))) == []
    assert catalogs.missing("en", iter(sorted(found))) == []
    assert catalogs.gettext("Review queue", "id") == "Antrean telaah"
    assert catalogs.gettext("illegal_fees", "id") == "pungutan liar"
