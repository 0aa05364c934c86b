"""What the bot says: message lookups in the chat's language, labels, dates in the
region's own time zone, keyboards, and the text of each notification.

Messages are English msgids translated by ``locale/id.po`` (Bahasa Indonesia, the
default) and ``locale/en.po``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from awasi import i18n, timefmt
from awasi.catalog import Catalog
from awasi.i18n import Catalogs

LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def _(message: str) -> str:
    """Marks a msgid for extraction; translated later with ``Texts.t``."""
    return message


STATUS = {
    "submitted": _("received, waiting to be forwarded"),
    "triage": _("being checked by the triage officer"),
    "assigned": _("forwarded to the agency"),
    "acknowledged": _("acknowledged by the agency"),
    "waiting_info": _("the agency is waiting for your answer"),
    "resolved": _("resolved by the agency"),
    "reopened": _("reopened"),
    "closed": _("closed"),
    "archived": _("archived: the agency's question was not answered"),
    "rejected": _("not accepted as a complaint"),
    "withdrawn": _("withdrawn"),
}

PRIVACY = {
    "named": _("Named (the agency sees your name)"),
    "confidential": _("Confidential (only intake and the oversight panel know who you are)"),
    "anonymous": _("Anonymous (nothing about you is kept)"),
}

# The summary's visibility choice (a toggle there; private unless the citizen
# presses "Make it public").
VISIBILITY = {
    "private": _("Private: not shown publicly; only the officials handling it and the "
                 "oversight panel read it."),
    "public": _("Public: the description, category, location, agency, status and deadlines "
                "appear on the public reports list. Your name, phone and this chat never "
                "do."),
}

# Conversation entries the bot shows to the chat that filed the complaint.
CONVERSATION = {
    "ticket.info_requested": (_("%(agency)s asked: %(text)s"), "question"),
    "ticket.responded": (_("%(agency)s responded: %(text)s"), "message"),
    # The file itself is on the status page (a signed link), never in the chat.
    "ticket.attachment_added": (_("%(agency)s sent you a file (on the status page): %(text)s"),
                                "file_name"),
    "ticket.resolved": (_("%(agency)s resolved it: %(text)s"), "note"),
    "info_added": (_("You wrote: %(text)s"), "message"),
}

DEADLINE_STEP = {
    "triage": _("forward your complaint"),
    "acknowledge": _("acknowledge your complaint"),
    "resolve": _("resolve your complaint"),
}

OUTCOME = {
    "no_maladministration": _("no maladministration found"),
    "maladministration": _("maladministration found"),
    "inconclusive": _("inconclusive"),
}

# Notification kind (the event type) -> message.
NOTIFICATIONS = {
    "complaint.routed": _("Your complaint %(code)s was forwarded to %(agency)s. It should be "
                          "acknowledged by %(acknowledge_by)s and resolved by %(resolve_by)s."),
    "ticket.acknowledged": _("%(agency)s has acknowledged your complaint %(code)s and is "
                             "working on it. Due to be resolved by %(resolve_by)s."),
    "ticket.info_requested": _("%(agency)s asks for more information about your complaint "
                               "%(code)s:\n\n%(question)s\n\nReply here with a message (or "
                               "press the button) and we pass your answer on."),
    "ticket.responded": _("%(agency)s responded to your complaint %(code)s:\n\n%(message)s"),
    "ticket.attachment_added": _("%(agency)s sent you a file about your complaint %(code)s: "
                                 "%(file_name)s. Download it from your complaint's page "
                                 "(open it with your follow-up secret): %(status_link)s"),
    "ticket.resolved": _("%(agency)s marked your complaint %(code)s as resolved:\n\n%(note)s"
                         "\n\nHow satisfied are you? Rate from 1 (bad) to 5 (very good)."),
    "ticket.resolved.dispute": _("If the problem is not fixed, press \"Not fixed\" before "
                                 "%(dispute_until)s and the oversight panel will review it."),
    "ticket.transferred": _("Your complaint %(code)s was transferred to %(agency)s, which is "
                            "responsible for it."),
    "ticket.reopened": _("Your complaint %(code)s was reopened and is with %(agency)s again."),
    "case.reopened": _("Your complaint %(code)s was reopened by the oversight panel."),
    "ticket.clock_resumed": _("Thank you: %(agency)s has your answer on complaint %(code)s and "
                              "its clock runs again. Due to be resolved by %(resolve_by)s."),
    "case.closed": _("Your complaint %(code)s is closed."),
    "case.info_reminder": _("Reminder: %(code)s still waits for your answer to the agency's "
                            "question. Without it the complaint is archived on %(archive_at)s."),
    "case.archived": _("Your complaint %(code)s was archived because the agency's question "
                       "was not answered. Answer by %(revive_until)s to revive it."),
    "ticket.moved_region": _("Your complaint %(code)s concerns another city and was sent to "
                             "its verifier. Reason: %(note)s"),
    "ticket.returned_to_triage": _("Your complaint %(code)s went back to the city's verifier, "
                                   "who will decide which agency handles it."),
    "ticket.rejected": _("Your complaint %(code)s was not accepted as a complaint. Reason: "
                         "%(note)s"),
    "ticket.duplicate_linked": _("Your complaint %(code)s is about the same problem as report "
                                 "%(original)s, which %(agency)s is already handling, so it "
                                 "was closed as a duplicate. Follow the problem there: "
                                 "%(original_link)s"),
    "ticket.duplicate_linked.private": _("Your complaint %(code)s is about the same problem as "
                                         "complaint %(original)s, which %(agency)s is already "
                                         "handling, so it was closed as a duplicate. That "
                                         "complaint is private: with its tracking code "
                                         "%(original)s you can follow its status and "
                                         "deadlines (the status page, or /status "
                                         "%(original)s here), not its content."),
    "case.closed.dispute_rejected": _("The oversight panel reviewed your dispute of complaint "
                                      "%(code)s and found that the resolution stands; the "
                                      "complaint is closed. Reason: %(note)s"),
    "deadline.breached": _("%(agency)s is overdue: the deadline to %(step)s (%(due_at)s) "
                           "passed for your complaint %(code)s. The oversight team has been "
                           "alerted."),
    "case.escalated": _("Your complaint %(code)s has been escalated (level %(level)s) to the "
                        "head of the agency and the oversight panel."),
    "finding.recorded": _("The oversight panel published its finding on your complaint "
                          "%(code)s: %(outcome)s.\n\nRecommendation: %(recommendation)s"),
}


class Texts:
    """Message lookup and formatting for one catalog of regions and categories."""

    def __init__(self, catalog: Catalog, *more_locales: Path, intake_url: str = "") -> None:
        """``more_locales``: further catalog folders merged over the bot's (the
        e-mail's own messages); ``intake_url``: intake's public address, for links."""
        self.catalog = catalog
        self.intake_url = intake_url
        self.messages = Catalogs(LOCALE_DIR, *more_locales)

    def t(self, locale: str, message: str, /, **params: Any) -> str:
        # Substituted here, not by Catalogs.gettext: a parameter may be called
        # "message" (the agency's response), which gettext's own argument shadows.
        text = self.messages.gettext(message, locale)
        return text % params if params else text

    # --- names ---------------------------------------------------------------------

    def region(self, code: str | None) -> str:
        r = self.catalog.regions.get(code or "")
        return r.name if r else (code or "-")

    def category(self, code: str | None, locale: str) -> str:
        c = self.catalog.categories.get(code or "")
        return c.name(locale) if c else (code or "-")

    def agency(self, code: str | None, locale: str) -> str:
        if not code:
            return self.t(locale, "the agency")
        a = self.catalog.agencies.get(code)
        return a.short_name if a else code

    def when(self, iso: str | datetime | None, region: str | None, locale: str) -> str:
        """A date and time in the region's own zone (WIB, WITA, WIT), in the chat's
        language (``awasi.timefmt``: one format for every page and message)."""
        r = self.catalog.regions.get(region or "")
        return timefmt.format_datetime(iso, r.timezone if r else None, locale, empty="-")

    # --- keyboards ------------------------------------------------------------------

    @staticmethod
    def keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)
                                      for label, data in row] for row in rows])

    # --- notifications --------------------------------------------------------------

    def values(self, params: dict[str, Any], *, locale: str, code: str,
               region: str) -> dict[str, Any]:
        """A notification's parameters (``notify.citizen_news``) as the words and
        local times its message is written with, in ``locale``; every channel's
        message (this bot's, intake's e-mail) is formatted from these."""
        t = lambda m, **kw: self.t(locale, m, **kw)  # noqa: E731
        return {
            "code": code,
            "agency": self.agency(params.get("agency"), locale),
            "acknowledge_by": self.when(params.get("acknowledge_by"), region, locale),
            "resolve_by": self.when(params.get("resolve_by"), region, locale),
            "dispute_until": self.when(params.get("dispute_until"), region, locale),
            "due_at": self.when(params.get("due_at"), region, locale),
            "archive_at": self.when(params.get("archive_at"), region, locale),
            "revive_until": self.when(params.get("revive_until"), region, locale),
            "question": params.get("question", ""),
            "message": params.get("message", ""),
            "note": params.get("note", ""),
            "level": params.get("level", ""),
            "recommendation": params.get("recommendation", ""),
            "step": t(DEADLINE_STEP.get(params.get("deadline", ""), "resolve your complaint")),
            "outcome": t(OUTCOME.get(params.get("outcome", ""), "inconclusive")),
            "original": params.get("original", ""),
            "original_link": self.report_link(params.get("original", "")),
            "file_name": params.get("file_name", ""),
            "status_link": self.status_link(code),
        }

    def status_link(self, code: str) -> str:
        """The complaint's status page (the code alone when intake's address is
        unknown): where an attachment is downloaded, after unlocking."""
        if not self.intake_url:
            return code
        return f"{self.intake_url.rstrip('/')}/status/{code}"

    def report_link(self, code: str) -> str:
        """A public report's page (the code alone when intake's address is unknown)."""
        if not code or not self.intake_url:
            return code
        return f"{self.intake_url.rstrip('/')}/reports/{code}"

    def notification(self, kind: str, params: dict[str, Any], *, locale: str, code: str,
                     region: str, complaint_id: str, may_dispute: bool,
                     may_rate: bool) -> tuple[str, InlineKeyboardMarkup | None]:
        """The message (and buttons) telling the citizen of one change."""
        t = lambda m, **kw: self.t(locale, m, **kw)  # noqa: E731
        values = self.values(params, locale=locale, code=code, region=region)
        kind = message_kind(kind, params)
        text = t(NOTIFICATIONS[kind], **values)
        if link := survey_link(self.intake_url, params):
            text += "\n\n" + t(SURVEY_INVITATION, agency=values["agency"], link=link)
        markup = None
        if kind == "ticket.info_requested":
            markup = self.keyboard([[(t("Answer the question"), f"ans:{complaint_id}")]])
        elif kind == "ticket.resolved" and may_rate:
            rows = [[(str(n), f"rate:{complaint_id}:{n}") for n in range(1, 6)]]
            if may_dispute:
                text += "\n\n" + t(NOTIFICATIONS["ticket.resolved.dispute"], **values)
                rows.append([(t("Not fixed"), f"disp:{complaint_id}")])
            markup = self.keyboard(rows)
        return text, markup


SURVEY_INVITATION = _("How was the service of %(agency)s? Tell the city in the satisfaction "
                      "survey (a minute, no name asked): %(link)s")


def survey_link(intake_url: str, params: dict[str, Any]) -> str | None:
    """The satisfaction survey of the agency that handled a closed complaint, for the
    invitation every citizen whose complaint closes receives; None for other news."""
    if not intake_url or not params.get("survey_agency"):
        return None
    return f"{intake_url.rstrip('/')}/survey?agency={params['survey_agency']}"


def message_kind(kind: str, params: dict[str, Any]) -> str:
    """The key of the message that tells of an event: a closing after the panel
    rejected the dispute says so, and a duplicate of a private original never links
    to it (the bot's and the e-mail's wording alike)."""
    if kind == "case.closed" and params.get("reason") == "dispute_rejected":
        return "case.closed.dispute_rejected"
    if kind == "ticket.duplicate_linked" and not params.get("original_public"):
        return "ticket.duplicate_linked.private"
    return kind


def user_locale(language_code: str | None) -> str:
    """English for English speakers, else Bahasa Indonesia."""
    return i18n.normalize(language_code) or i18n.DEFAULT
