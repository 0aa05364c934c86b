"""The satisfaction survey in Telegram: ``/survei UNIT`` (``/survey``), and the deep
link ``https://t.me/<bot>?start=survei-UNIT`` (Telegram sends ``/start survei-UNIT``).

Stateless: each question's four buttons carry the answers given so far in their
callback data (``sv:<unit>:<digits>``, at most 53 bytes of Telegram's 64), so nothing
is kept between taps and a restart loses nothing. After the ninth answer the sheet is
stored through ``services.intake.survey.store_response`` (channel ``telegram``); the
Telegram user counts once per unit per quarter (keyed by an HMAC of the user id, as
the web's device), a second sheet is kept as a duplicate. Callback data comes from
the client: the unit and every digit are checked again before anything is stored.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from awasi.catalog import Unit, UnknownCode
from awasi.ikm import ELEMENTS
from awasi.questionnaire import QUESTIONNAIRE
from services.intake.survey import AnswersIn, SurveyIn, respondent_key, store_response
from services.intake.telegram.conversation import Conversation
from services.intake.telegram.texts import _, user_locale

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
DATA = re.compile(r"^sv:([A-Z0-9-]{1,40}):([1-4]{1,9})$")
DEEP_LINK = re.compile(r"^/start(?:@\w+)? survei-([A-Za-z0-9-]{1,40})$")

HOW = _("Send /survei followed by the code of the service unit from the poster at the "
        "counter, for example /survei MDN-PKM-PADANGBULAN.")
UNKNOWN = _("No service unit has the code %(code)s. The code is on the poster at the "
            "counter, for example /survei MDN-PKM-PADANGBULAN.")
HEADER = _("Satisfaction survey: %(unit)s. Question %(n)s of 9.")
THANKS = _("Thank you! Your answers for %(unit)s were recorded.")
AGAIN = _("You already answered the survey of %(unit)s in this period. Your new answers "
          "were recorded but are not counted again.")


class SurveyBot:
    """Handlers for the survey; they share the conversation's settings, catalog, pool
    and texts."""

    def __init__(self, conversation: Conversation) -> None:
        self.c = conversation

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add the handlers; call before the conversation's, so the deep link wins over
        its plain /start and the ``sv:`` buttons over its button handler."""
        application.add_handler(CommandHandler(
            ["survei", "survey"], self.cmd_survey, filters=filters.UpdateType.MESSAGE))
        application.add_handler(CommandHandler(
            "start", self.cmd_start_link,
            filters=filters.UpdateType.MESSAGE & filters.Regex(DEEP_LINK)))
        application.add_handler(CallbackQueryHandler(self.on_answer, pattern=r"^sv:"))

    def _locale(self, update: Update) -> str:
        user = update.effective_user
        return user_locale(user.language_code if user else None)

    def _unit(self, code: str) -> Unit | None:
        try:
            return self.c.catalog.unit(code.strip().upper())
        except UnknownCode:
            return None

    async def cmd_survey(self, update: Update, context: Context) -> None:
        code = " ".join(context.args or []).strip()
        await self._begin(update, context, code)

    async def cmd_start_link(self, update: Update, context: Context) -> None:
        assert update.message is not None and update.message.text is not None
        m = DEEP_LINK.match(update.message.text.strip())
        await self._begin(update, context, m[1] if m else "")

    async def _begin(self, update: Update, context: Context, code: str) -> None:
        assert update.effective_chat is not None
        locale = self._locale(update)
        chat_id = update.effective_chat.id
        if not code:
            await context.bot.send_message(chat_id, self.c.texts.t(locale, HOW))
            return
        unit = self._unit(code)
        if unit is None:
            await context.bot.send_message(chat_id, self.c.texts.t(locale, UNKNOWN,
                                                                   code=code[:40]))
            return
        await self._ask(context, chat_id, locale, unit, "")

    async def _ask(self, context: Context, chat_id: int, locale: str, unit: Unit,
                   given: str) -> None:
        element = QUESTIONNAIRE[len(given)]
        header = self.c.texts.t(locale, HEADER, unit=unit.name, n=len(given) + 1)
        buttons = [[InlineKeyboardButton(f"{i}. {label}",
                                         callback_data=f"sv:{unit.code}:{given}{i}")]
                   for i, label in enumerate(element.answers(locale), start=1)]
        await context.bot.send_message(
            chat_id, f"{header}\n\n{element.code}. {element.question(locale)}",
            reply_markup=InlineKeyboardMarkup(buttons))

    async def on_answer(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None and update.effective_chat is not None
        await query.answer()
        m = DATA.match(query.data or "")
        unit = self._unit(m[1]) if m else None
        if m is None or unit is None:
            log.info("survey button with unusable data ignored")
            return
        locale = self._locale(update)
        given = m[2]
        chat_id = update.effective_chat.id
        if len(given) < len(ELEMENTS):
            await self._ask(context, chat_id, locale, unit, given)
            return
        assert update.effective_user is not None
        body = SurveyIn(answers=AnswersIn(**{code: int(d) for code, d
                                             in zip(ELEMENTS, given, strict=True)}))
        key = respondent_key(self.c.settings, "telegram", str(update.effective_user.id))
        stored = await store_response(self.c.pool, self.c.catalog, unit, body, key,
                                      "telegram")
        await context.bot.send_message(chat_id, self.c.texts.t(
            locale, THANKS if stored.counted else AGAIN, unit=unit.name))
