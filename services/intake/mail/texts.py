"""What an e-mail to the citizen says: subject and plain-text body, in the language
they filed in, with the link to their complaint's page and nothing else personal.

The news itself is worded once, for every channel, in the bot's catalog
(``services/intake/telegram/texts.py``, ``NOTIFICATIONS``) and formatted from the
same values (``Texts.values``: agency names, local times). Only what differs in an
e-mail is here: the subject, and the two messages whose bot wording tells the citizen
to press a button or reply in the chat (a question from the agency, a resolution
to rate or dispute), which an e-mail points to the status page for instead.
Messages are English msgids translated by ``locale/id.po`` and ``locale/en.po``.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from awasi.catalog import Catalog
from services.intake.telegram.texts import (
    NOTIFICATIONS,
    SURVEY_INVITATION,
    Texts,
    message_kind,
    survey_link,
)

LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def _(message: str) -> str:
    """Marks a msgid for extraction; translated later."""
    return message


SUBJECTS = {
    "complaint.routed": _("Your complaint %(code)s was forwarded to %(agency)s"),
    "ticket.acknowledged": _("%(agency)s is working on your complaint %(code)s"),
    "ticket.info_requested": _("%(agency)s asks about your complaint %(code)s"),
    "ticket.responded": _("%(agency)s responded to your complaint %(code)s"),
    "ticket.attachment_added": _("%(agency)s sent you a file about your complaint %(code)s"),
    "ticket.resolved": _("Your complaint %(code)s was marked resolved"),
    "ticket.transferred": _("Your complaint %(code)s was transferred to %(agency)s"),
    "ticket.reopened": _("Your complaint %(code)s was reopened"),
    "case.reopened": _("Your complaint %(code)s was reopened"),
    "deadline.breached": _("%(agency)s is overdue on your complaint %(code)s"),
    "case.escalated": _("Your complaint %(code)s was escalated"),
    "finding.recorded": _("The oversight panel's finding on your complaint %(code)s"),
    "ticket.clock_resumed": _("The deadlines of your complaint %(code)s run again"),
    "case.closed": _("Your complaint %(code)s is closed"),
    "case.closed.dispute_rejected": _("The oversight panel did not uphold your dispute on "
                                      "%(code)s"),
    "case.info_reminder": _("Reminder: your complaint %(code)s still waits for your answer"),
    "case.archived": _("Your complaint %(code)s was archived"),
    "ticket.moved_region": _("Your complaint %(code)s was moved to another city"),
    "ticket.returned_to_triage": _("Your complaint %(code)s is being routed again"),
    "ticket.rejected": _("Your complaint %(code)s was not accepted"),
    "ticket.duplicate_linked": _("Your complaint %(code)s continues as report %(original)s"),
    "ticket.duplicate_linked.private": _("Your complaint %(code)s continues as complaint "
                                         "%(original)s"),
}

# Bodies that differ from the bot's (which speak of buttons and replying in the chat).
BODIES = {
    # The page's link follows every e-mail's body (``LINK``): not repeated here.
    "ticket.attachment_added": _("%(agency)s sent you a file about your complaint %(code)s: "
                                 "%(file_name)s.\n\nDownload it from your complaint's page, "
                                 "opened with the follow-up secret you got when you sent it."),
    "ticket.info_requested": _("%(agency)s asks for more information about your complaint "
                               "%(code)s:\n\n%(question)s\n\nAnswer on your complaint's "
                               "page, with the follow-up secret you got when you sent it."),
    "ticket.resolved": _("%(agency)s marked your complaint %(code)s as resolved:\n\n%(note)s"
                         "\n\nOn your complaint's page you can rate the result from 1 to 5 "
                         "and, if the problem is not fixed, dispute it before "
                         "%(dispute_until)s; the oversight panel then reviews it."),
}

LINK = _("Your complaint's page: %(link)s")
FOOTER = _("You receive this e-mail because you gave this address with your complaint. "
           "Please do not reply: this address is not read. Awasi never asks for your "
           "follow-up secret by e-mail.")


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str
    html: str


class MailTexts:
    def __init__(self, catalog: Catalog, intake_url: str = "") -> None:
        self.texts = Texts(catalog, LOCALE_DIR, intake_url=intake_url)

    def compose(self, kind: str, params: dict[str, Any], *, locale: str, code: str,
                region: str, status_url: str) -> Mail:
        """The e-mail for notification ``kind`` (an event type ``citizen_news`` chose).
        Raises ``KeyError`` for a kind no message is written for."""
        t = self.texts.t
        values = self.texts.values(params, locale=locale, code=code, region=region)
        kind = message_kind(kind, params)
        body = t(locale, BODIES.get(kind) or NOTIFICATIONS[kind], **values)
        if link := survey_link(self.texts.intake_url, params):
            body += "\n\n" + t(locale, SURVEY_INVITATION, agency=values["agency"], link=link)
        subject = t(locale, SUBJECTS[kind], **values)
        text = (f"{body}\n\n{t(locale, LINK, link=status_url)}\n\n-- \n"
                f"{t(locale, FOOTER)}\n")
        return Mail(subject=" ".join(subject.split()), body=text,
                    html=_html(locale, body, t(locale, LINK, link=""), status_url,
                               t(locale, FOOTER)))


def _html(locale: str, body: str, link_label: str, url: str, footer: str) -> str:
    """The same message as simple HTML (paragraphs and the link), every part escaped:
    the agency's words are text, never markup."""
    paragraphs = "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>"
                         for p in body.split("\n\n"))
    return (f'<!doctype html><html lang="{escape(locale)}"><body>{paragraphs}'
            f'<p>{escape(link_label.rstrip(": "))}: <a href="{escape(url)}">{escape(url)}</a></p>'
            f'<hr><p style="color:#555;font-size:small">{escape(footer)}</p></body></html>')
