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


def test_every_event_on_a_case_timeline_has_words() -> None:
    """The case page names each event in people's words: every event type that can
    reach a case's timeline has a label (an unlabelled one showed as "Other event")."""
    from awasi.events.asyncapi import OFF_TOPIC, TOPIC_OF_TYPE

    words = (ROOT / "templates" / "_words.html").read_text()
    start = words.index("macro event_label")
    labelled = set(re.findall(r'"([a-z_]+\.[a-z_]+)":', words[start:words.index("endmacro",
                                                                                start)]))
    # Never about one complaint: the signed checkpoints, the backbone's probe, and the
    # survey's responses (anonymous, per agency).
    not_on_a_case = {"audit.checkpoint", "probe.ping", "survey.response_submitted"}
    assert (set(TOPIC_OF_TYPE) | OFF_TOPIC) - not_on_a_case - labelled == set()


def test_no_catalog_gives_one_message_two_translations() -> None:
    """A msgid twice in a .po file keeps only its last translation, silently: the
    oversight catalogs once had "triage" as a deadline (triase) and as a status
    (dalam verifikasi), and the case page named the triage deadline by the status."""
    services = ROOT.parent
    twice = {}
    for po in sorted(services.glob("*/locale/*.po")):
        ids = re.findall(r'^msgid "((?:[^"\\]|\\.)*)"$', po.read_text(), re.MULTILINE)
        repeated = sorted({i for i in ids if ids.count(i) > 1} - {""})
        if repeated:
            twice[str(po.relative_to(services))] = repeated
    assert len(list(services.glob("*/locale/*.po"))) == 6
    assert twice == {}
