"""The conversation: /start, /lapor (report), /status, /batal (cancel), /bantuan (help),
answering an agency's question, rating and disputing.

A report walks through these states, each kept in ``intake.telegram_chats``:
``region -> category -> description -> location -> photos -> privacy -> [name -> phone]
-> summary`` and back to ``idle`` once submitted. At the summary the citizen can send,
edit one field (``edit``, which returns to the summary), or make the report public
(a toggle: a report stays private unless the citizen presses it). Anything at the wrong
moment (a sticker, free text where a button is expected, a stale button) gets a hint
and the current question again, never silence.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from awasi.catalog import Catalog
from awasi.db.locks import session_advisory_lock
from awasi.events.payloads import Location
from awasi.settings import Settings
from awasi.web.errors import ApiError, RateLimited, ValidationFailed
from services.intake import db, domain, participation
from services.intake.domain import FeedbackIn, InfoIn, ReporterIn, SubmitCommand
from services.intake.errors import NotAllowedNow, UnknownComplaint
from services.intake.photos import MAX_PHOTO_BYTES, MAX_PHOTOS, Photo, PhotoCleaner
from services.intake.telegram import store
from services.intake.telegram.metrics import BotMetrics
from services.intake.telegram.store import Chat
from services.intake.telegram.texts import (
    CONVERSATION,
    PRIVACY,
    STATUS,
    VISIBILITY,
    Texts,
    _,
    user_locale,
)

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

# Steps that return to the summary when the citizen is editing one field.
_BACK_TO_SUMMARY = {"category", "description", "location", "photos", "phone"}
_TEXT_STATES = {"description", "name", "phone"}
_BUTTON_STATES = {"region", "category", "privacy", "summary", "edit"}
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{5,30}$")
_EDITABLE = ("region", "category", "description", "location", "photos", "privacy")
# How many of the latest conversation entries /status shows, and how much of each.
_CONVERSATION_ENTRIES = 5
_CONVERSATION_CHARS = 300


Handler = Callable[[Update, "Context"], Awaitable[None]]
# Advisory lock key space of the bot's per-chat locks ("tg" in ASCII); the second key
# is the chat id folded into 32 bits (a rare collision only serialises two chats).
_LOCK_SPACE = 0x7467


def _lock_key(chat_id: int) -> int:
    folded = (chat_id ^ (chat_id >> 32)) & 0xFFFFFFFF
    return folded - (1 << 32) if folded >= (1 << 31) else folded


def secret_for(settings: Settings, complaint_id: uuid.UUID, key: str) -> str:
    """The follow-up secret of a complaint the bot submitted under ``key``.

    The secret itself is never stored (only its hash, by intake). A submission with an
    Idempotency-Key gets a secret derived from the server key, the complaint id and
    the key, so the bot can prove ownership later for this chat's complaints
    (answer, rate, dispute) without keeping the secret anywhere."""
    return domain._derived_secret(settings, complaint_id, key)  # noqa: SLF001


class Conversation:
    """The bot's handlers. ``pool`` is looked up at call time: it is opened by the
    app's database context after this object is built."""

    def __init__(self, settings: Settings, catalog: Catalog, pool: Any,
                 metrics: BotMetrics | None = None,
                 support_limiter: participation.SupportLimiter | None = None,
                 trigram: Callable[[], bool] = lambda: False, *,
                 photos: PhotoCleaner) -> None:
        self.settings = settings
        self.photos = photos  # the app's re-encoding pool
        self.catalog = catalog
        self._pool = pool
        self.texts = Texts(catalog)
        self.metrics = metrics or BotMetrics()
        self.support_limiter = support_limiter or participation.SupportLimiter(
            settings.support_rate_limit_per_minute,
            settings.support_address_rate_limit_per_minute)
        self._trigram = trigram

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()  # type: ignore[no-any-return]

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        application.add_handler(TypeHandler(Update, self.gate), group=-1)
        one = self.one_at_a_time
        for names, callback in ((("start",), self.cmd_start),
                                (("lapor", "report"), self.cmd_report),
                                (("status",), self.cmd_status),
                                (("dukung", "support"), self.cmd_support),
                                (("batal", "cancel"), self.cmd_cancel),
                                (("bantuan", "help"), self.cmd_help)):
            application.add_handler(CommandHandler(
                list(names), one(callback), filters=filters.UpdateType.MESSAGE))
        application.add_handler(CallbackQueryHandler(one(self.on_button)))
        application.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE,
                                               one(self.on_edited)))
        application.add_handler(MessageHandler(
            filters.UpdateType.MESSAGE & filters.COMMAND, one(self.on_unknown_command)))
        application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, one(self.on_message)))
        application.add_error_handler(self.on_error)

    def one_at_a_time(self, handler: Handler) -> Handler:
        """Run ``handler`` holding the chat's advisory lock.

        One process handles its updates in order, but behind the webhook several intake
        replicas may each get an update of the same chat at once (two quick taps):
        without the lock both would read the same state and one write would be lost."""

        async def locked(update: Update, context: Context) -> None:
            chat = update.effective_chat
            assert chat is not None
            async with (self.pool.acquire() as conn,
                        session_advisory_lock(conn, _LOCK_SPACE, _lock_key(chat.id))):
                await handler(update, context)

        return locked

    # --- plumbing --------------------------------------------------------------------

    async def gate(self, update: Update, context: Context) -> None:
        """Runs first for every update: drop a repeated update id (Telegram retries),
        note a user who blocked the bot, and ignore anything outside a private chat.

        The id is recorded before the update is handled: a crash mid-update loses that
        one step (the citizen sends it again), never repeats it."""
        if not await store.claim_update(self.pool, update.update_id):
            log.info("repeated telegram update ignored", extra={"update_id": update.update_id})
            self.metrics.updates.labels("duplicate").inc()
            raise ApplicationHandlerStop
        self.metrics.updates.labels("processed").inc()
        member = update.my_chat_member
        if member is not None and member.new_chat_member.status in ("kicked",):
            await store.mark_blocked(self.pool, member.chat.id)
            raise ApplicationHandlerStop
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE or update.effective_user is None:
            raise ApplicationHandlerStop

    async def _chat(self, update: Update) -> Chat:
        assert update.effective_chat is not None and update.effective_user is not None
        return await store.load_chat(self.pool, update.effective_chat.id,
                                     user_locale(update.effective_user.language_code))

    def t(self, chat: Chat, message: str, /, **params: Any) -> str:
        return self.texts.t(chat.locale, message, **params)

    async def say(self, context: Context, chat: Chat, text: str,
                  markup: InlineKeyboardMarkup | None = None) -> None:
        await context.bot.send_message(chat.chat_id, text, reply_markup=markup)

    async def on_error(self, update: object, context: Context) -> None:
        """The one error handler: log first, then tell the citizen."""
        log.error("telegram update failed", exc_info=context.error)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        if isinstance(context.error, Forbidden):
            # The citizen blocked the bot while we answered: nothing more to say.
            await store.mark_blocked(self.pool, update.effective_chat.id)
            return
        locale = user_locale(update.effective_user.language_code
                             if update.effective_user else None)
        try:
            await context.bot.send_message(
                update.effective_chat.id,
                self.texts.t(locale, "Sorry, something went wrong on our side. Please "
                                     "try again in a moment."))
        except Exception:  # noqa: BLE001 - the error is already logged
            log.warning("could not tell the user about the error")

    # --- commands --------------------------------------------------------------------

    async def cmd_start(self, update: Update, context: Context) -> None:
        chat = await self._chat(update)
        await self.say(context, chat, self.t(
            chat, "Welcome to Awasi, the public complaints service of your local "
                  "government. Report a problem with a public service (illegal fees, absent "
                  "officials, roads, waste, schools, health centres ...) and follow it until "
                  "it is resolved.\n\nPrivacy: you choose to report named, confidential or "
                  "anonymously. Your name and phone number never reach the agency unless you "
                  "report named; this chat is only used to send you news of your complaint."
                  "\n\n/lapor to report, /status to follow your complaints, /bantuan for help."))

    async def cmd_help(self, update: Update, context: Context) -> None:
        chat = await self._chat(update)
        await self.say(context, chat, self._help(chat))

    def _help(self, chat: Chat) -> str:
        return self.t(chat, "Commands:\n/lapor - report a complaint\n/status CODE - the status "
                            "of a complaint\n/status - your complaints\n/batal - cancel the "
                            "report you are writing\n/bantuan - this help")

    async def cmd_report(self, update: Update, context: Context) -> None:
        chat = await self._chat(update)
        await store.drop_photos(self.pool, chat.chat_id)
        chat.draft = {"id": uuid.uuid4().hex}
        chat.state = "region"
        await store.save_chat(self.pool, chat)
        await self.prompt(context, chat)

    async def cmd_cancel(self, update: Update, context: Context) -> None:
        chat = await self._chat(update)
        if chat.state == "idle":
            await self.say(context, chat, self.t(chat, "There is nothing to cancel. /lapor "
                                                       "starts a new report."))
            return
        await store.drop_photos(self.pool, chat.chat_id)
        chat.state, chat.draft = "idle", {}
        await store.save_chat(self.pool, chat)
        await self.say(context, chat, self.t(chat, "Your report was cancelled and nothing was "
                                                   "kept. /lapor starts a new one."))

    async def cmd_status(self, update: Update, context: Context) -> None:
        chat = await self._chat(update)
        if context.args:
            code = " ".join(context.args)
            await self.say(context, chat, await self._status_text(chat, code),
                           await self._support_markup(chat, code))
            return
        rows = await store.reports_of_chat(self.pool, chat.chat_id)
        if not rows:
            await self.say(context, chat, self.t(chat, "You have not reported anything from "
                                                       "this chat yet. /lapor to report, or "
                                                       "/status CODE for a tracking code."))
            return
        lines = [self.t(chat, "Your complaints:")]
        lines += [f"{r['tracking_code']}: {self.t(chat, STATUS.get(r['status'], r['status']))}"
                  for r in rows]
        lines.append(self.t(chat, "/status CODE for the details."))
        await self.say(context, chat, "\n".join(lines))

    async def _status_text(self, chat: Chat, code: str) -> str:
        """The status for ``/status CODE``: status, agency and deadlines for any code;
        the category and the latest conversation only in the chat that filed it."""
        row = await db.complaint_by_code(self.pool, domain.normalize_code(code))
        owner = row is not None and await store.report_of(
            self.pool, chat.chat_id, row["id"]) is not None
        try:
            s = await domain.complaint_status(self.pool, self.catalog, code, owner=owner)
        except UnknownComplaint:
            return self.t(chat, "No complaint has the tracking code %(code)s. Check it and try "
                                "again.", code=code.strip()[:40])
        region = s["region"]["code"]
        lines = [self.t(chat, "Complaint %(code)s", code=s["tracking_code"]),
                 self.t(chat, "Status: %(status)s",
                        status=self.t(chat, STATUS.get(s["status"], s["status"])))]
        if s["access"] == "conversation":
            lines.append(self.t(chat, "Category: %(category)s", category=s["category"][
                "name_en" if chat.locale == "en" else "name_id"]))
        if s["agency"]:
            lines.append(self.t(chat, "Agency: %(agency)s", agency=s["agency"]["short_name"]))
        d, late = s["deadlines"], s["overdue"]
        for key, label, overdue in (
                ("acknowledge_by", _("Acknowledge by: %(when)s"), late["acknowledge"]),
                ("resolve_by", _("Resolve by: %(when)s"), late["resolve"])):
            if d[key]:
                line = self.t(chat, label, when=self.texts.when(d[key], region, chat.locale))
                if overdue:
                    line += " - " + self.t(chat, "OVERDUE")
                lines.append(line)
        if s["paused"]:
            # The lifecycle's paused clock: the agency waits for the citizen.
            lines.append(self.t(chat, "Waiting for you: the agency's clock is stopped until "
                                      "you answer its question."))
        if s["access"] == "conversation":
            lines += self._conversation(chat, s["timeline"])
        else:
            lines.append(self.t(chat, "The conversation is shown only in the chat that "
                                      "reported it, or on the web with the follow-up secret."))
        return "\n".join(lines)

    # --- supports ("saya juga mengalami") -----------------------------------------

    async def _support_markup(self, chat: Chat, code: str) -> InlineKeyboardMarkup | None:
        """A support button under ``/status CODE`` of a public report still open."""
        row = await db.complaint_by_code(self.pool, domain.normalize_code(code))
        if not participation.supportable(row):
            return None
        assert row is not None
        return self.texts.keyboard([[(self.t(
            chat, "I experience this too (%(n)s)", n=row["support_count"]),
            f"sup:{row['tracking_code']}")]])

    async def cmd_support(self, update: Update, context: Context) -> None:
        """``/dukung CODE``: support a public report, as the button does."""
        chat = await self._chat(update)
        if not context.args:
            await self.say(context, chat, self.t(chat, "Send /dukung with the tracking code "
                                                       "of a public report, e.g. /dukung "
                                                       "MDN-7KQ4-X2PA."))
            return
        await self._support(context, chat, update, " ".join(context.args))

    async def _support(self, context: Context, chat: Chat, update: Update, code: str) -> None:
        """Count one support by this Telegram user (not this chat: a user is one
        person wherever they write from), rate limited like the web."""
        assert update.effective_user is not None
        key = participation.supporter_key(self.settings.secret_key, "telegram",
                                          str(update.effective_user.id))
        try:
            self.support_limiter.check(key, None)
            result = await participation.support(self.pool, code, key, "telegram")
        except RateLimited as e:
            await self.say(context, chat, self.t(
                chat, "Too many supports. Please try again in %(s)s seconds.",
                s=e.details["retry_after_s"]))
            return
        except UnknownComplaint:
            await self.say(context, chat, self.t(
                chat, "There is no public report open to support with the code %(code)s.",
                code=code.strip()[:40]))
            return
        text = (self.t(chat, "Thank you: your support of %(code)s is counted. %(n)s people "
                             "now report this problem.", code=result.tracking_code,
                       n=result.support_count)
                if result.counted else
                self.t(chat, "You already support %(code)s (%(n)s people in all).",
                       code=result.tracking_code, n=result.support_count))
        if chat.state != "idle":
            # Supporting from the "similar reports" list: the draft waits at its step.
            await self.prompt(context, chat, text)
        else:
            await self.say(context, chat, text)

    async def _similar_lines(self, chat: Chat) -> tuple[list[str], list[list[tuple[str, str]]]]:
        """Similar open public reports for the draft (shown once, before the first
        summary): lines of text and one support button each."""
        d = chat.draft
        if d.get("similar_seen") or not d.get("region") or not d.get("category"):
            return [], []
        rows = await participation.similar(self.pool, self._trigram(), d["region"],
                                           d["category"], d.get("description", ""),
                                           d.get("lat"), d.get("lon"))
        d["similar_seen"] = True
        await store.save_chat(self.pool, chat)
        if not rows:
            return [], []
        lines = [self.t(chat, "Similar reports already filed: you can support one instead "
                              "of filing again (the agency sees how many people are "
                              "affected), or send yours anyway."), ""]
        buttons = []
        for r in rows:
            text = r["description"] if len(r["description"]) <= 120 \
                else r["description"][:119] + "…"
            count = self.t(chat, "%(n)s supports", n=r["support_count"])
            lines.append(f"{r['tracking_code']}: {text} ({count})")
            buttons.append([(self.t(chat, "Support %(code)s", code=r["tracking_code"]),
                             f"sup:{r['tracking_code']}")])
        return [*lines, ""], buttons

    def _conversation(self, chat: Chat, timeline: list[dict[str, Any]]) -> list[str]:
        entries = [e for e in timeline if e["kind"] in CONVERSATION
                   and e.get(CONVERSATION[e["kind"]][1])][-_CONVERSATION_ENTRIES:]
        if not entries:
            return []
        lines = ["", self.t(chat, "Conversation:")]
        for e in entries:
            template, key = CONVERSATION[e["kind"]]
            text = str(e[key])
            if len(text) > _CONVERSATION_CHARS:
                text = text[:_CONVERSATION_CHARS - 1] + "…"
            lines.append("- " + self.t(chat, template, text=text, agency=self.texts.agency(
                e.get("agency"), chat.locale)))
        return lines

    async def on_unknown_command(self, update: Update, context: Context) -> None:
        chat = await self._chat(update)
        await self.say(context, chat, self.t(chat, "I do not know that command.") + "\n\n"
                       + self._help(chat))

    async def on_edited(self, update: Update, context: Context) -> None:
        chat = await self._chat(update)
        await self.say(context, chat, self.t(chat, "Edited messages are not read. Please send "
                                                   "the corrected text as a new message."))

    # --- the report, step by step ------------------------------------------------------

    async def prompt(self, context: Context, chat: Chat, hint: str | None = None) -> None:
        """Ask the current step's question (after ``hint``, if any)."""
        t = lambda m, **kw: self.t(chat, m, **kw)  # noqa: E731
        kb = self.texts.keyboard
        text, markup = "", None
        match chat.state:
            case "region":
                text = t("Which city or area is your complaint about?")
                markup = kb([[(r.name, f"r:{r.code}")] for r in self.catalog.regions.values()])
            case "category":
                cats = self.catalog.categories_for(chat.draft["region"])
                buttons = [(c.name(chat.locale), f"c:{c.code}") for c in cats]
                text = t("What is it about? Choose a category.")
                markup = kb([buttons[i:i + 2] for i in range(0, len(buttons), 2)])
            case "description":
                text = t("Describe the problem: what happened, where and when, and who was "
                         "involved (at least %(min)s characters).", min=domain.DESCRIPTION_MIN)
            case "location":
                text = t("Where is it? Share a location (paperclip, then Location) or type the "
                         "address. You may skip this step.")
                markup = kb([[(t("Skip"), "skip")]])
            case "photos":
                n = await store.count_photos(self.pool, chat.chat_id, chat.draft["id"])
                text = t("Send up to %(max)s photos (optional). %(n)s received so far.",
                         max=MAX_PHOTOS, n=n)
                markup = kb([[(t("Done") if n else t("Skip"), "done")]])
            case "privacy":
                text = t("How do you want to report?")
                markup = kb([[(t(PRIVACY[m]), f"pv:{m}")]
                             for m in ("named", "confidential", "anonymous")])
            case "name":
                text = t("Your name, please (the agency sees it only for a named report).")
            case "phone":
                text = t("Your phone number, so the agency or the panel can reach you "
                         "(optional).")
                markup = kb([[(t("Skip"), "skip")]])
            case "summary":
                similar, support_rows = await self._similar_lines(chat)
                text = "\n".join([*similar, await self._summary(chat)])
                public = chat.draft.get("visibility") == "public"
                markup = kb([*support_rows,
                             [(t("Send"), "ok"), (t("Edit"), "edit")],
                             [(t("Keep it private") if public else t("Make it public"),
                               "vis:private" if public else "vis:public")]])
            case "edit":
                text = t("What do you want to change?")
                labels = {"region": t("City or area"), "category": t("Category"),
                          "description": t("Description"), "location": t("Location"),
                          "photos": t("Photos"), "privacy": t("Privacy and name")}
                markup = kb([[(labels[f], f"ed:{f}")] for f in _EDITABLE]
                            + [[(t("Back to the summary"), "sum")]])
            case _:
                text = self._help(chat)
        await self.say(context, chat, f"{hint}\n\n{text}" if hint else text, markup)

    async def _summary(self, chat: Chat) -> str:
        d = chat.draft
        t = lambda m, **kw: self.t(chat, m, **kw)  # noqa: E731
        if d.get("lat") is not None:
            where = f"{d['lat']:.5f}, {d['lon']:.5f}"
        else:
            where = d.get("address") or "-"
        lines = [t("Please check your report:"),
                 t("City or area: %(v)s", v=self.texts.region(d.get("region"))),
                 t("Category: %(category)s",
                   category=self.texts.category(d.get("category"), chat.locale)),
                 t("Description: %(v)s", v=d.get("description", "")),
                 t("Location: %(v)s", v=where),
                 t("Photos: %(v)s", v=await store.count_photos(self.pool, chat.chat_id, d["id"])),
                 t("Privacy: %(v)s", v=t(PRIVACY[d.get("privacy", "confidential")]))]
        if d.get("privacy") != "anonymous":
            lines.append(t("Name: %(v)s", v=d.get("name") or "-"))
            lines.append(t("Phone: %(v)s", v=d.get("phone") or "-"))
        lines.append(t("Visibility: %(v)s", v=t(VISIBILITY[d.get("visibility", "private")])))
        return "\n".join(lines)

    async def advance(self, context: Context, chat: Chat, done: str) -> None:
        """Move on after step ``done`` (to the summary when editing one field)."""
        editing = chat.draft.get("editing", False)
        privacy = chat.draft.get("privacy")
        if done == "privacy":
            nxt = "summary" if privacy == "anonymous" else "name"
        elif editing and done in _BACK_TO_SUMMARY:
            nxt = "summary"
        else:
            nxt = {"region": "category", "category": "description", "description": "location",
                   "location": "photos", "photos": "privacy", "name": "phone",
                   "phone": "summary"}[done]
        if nxt == "summary":
            chat.draft.pop("editing", None)
        if done in ("region", "category", "description", "location"):
            # What the similar reports are looked up by changed: look again.
            chat.draft.pop("similar_seen", None)
        chat.state = nxt
        await store.save_chat(self.pool, chat)
        await self.prompt(context, chat)

    async def on_message(self, update: Update, context: Context) -> None:
        msg = update.message
        assert msg is not None
        chat = await self._chat(update)
        text = (msg.text or "").strip()
        t = lambda m, **kw: self.t(chat, m, **kw)  # noqa: E731
        state = chat.state

        if state == "idle":
            if chat.answer_for is not None and (text or msg.photo or msg.document):
                await self._answer(context, chat, chat.answer_for, msg)
                return
            await self.say(context, chat, t("To report a complaint send /lapor. To follow one, "
                                            "/status CODE. Help: /bantuan."))
            return
        if state in _BUTTON_STATES:
            await self.prompt(context, chat, t("Please choose with the buttons (or /batal to "
                                               "cancel)."))
            return
        if state in _TEXT_STATES and not text:
            await self.prompt(context, chat, t("Please answer with a text message."))
            return
        match state:
            case "description":
                if not domain.DESCRIPTION_MIN <= len(text) <= domain.DESCRIPTION_MAX:
                    await self.prompt(context, chat, t(
                        "The description must be %(min)s to %(max)s characters long.",
                        min=domain.DESCRIPTION_MIN, max=domain.DESCRIPTION_MAX))
                    return
                chat.draft["description"] = text
                await self.advance(context, chat, "description")
            case "location":
                if msg.location is not None:
                    point = Location(lat=msg.location.latitude, lon=msg.location.longitude)
                    try:
                        domain.check_location(self.catalog, chat.draft["region"], point)
                    except ValidationFailed:
                        await self.prompt(context, chat, t(
                            "That location is outside %(region)s. Share a location in the "
                            "city, or type the address.",
                            region=self.texts.region(chat.draft["region"])))
                        return
                    chat.draft.update(lat=msg.location.latitude, lon=msg.location.longitude,
                                      address=None)
                elif text and len(text) <= 500:
                    chat.draft.update(address=text, lat=None, lon=None)
                else:
                    await self.prompt(context, chat, t("Please share a location or type the "
                                                       "address (up to 500 characters)."))
                    return
                await self.advance(context, chat, "location")
            case "photos":
                await self._photo(context, chat, msg)
            case "name":
                if len(text) > 200:
                    await self.prompt(context, chat, t("That is too long for a name."))
                    return
                chat.draft["name"] = text
                await self.advance(context, chat, "name")
            case "phone":
                if not _PHONE.match(text):
                    await self.prompt(context, chat, t("That does not look like a phone "
                                                       "number."))
                    return
                chat.draft["phone"] = text
                await self.advance(context, chat, "phone")
            case _:
                await self.say(context, chat, self._help(chat))

    async def _fetch_photo(self, context: Context, msg: Message) -> Photo | str | None:
        """The message's image (a photo's largest size, or an image sent as a file),
        fetched through getFile and re-encoded without metadata like the web form's:
        a ``Photo``; None when the message has no image; an error msgid if refused."""
        file_id, size = None, None
        if msg.photo:
            file_id, size = msg.photo[-1].file_id, msg.photo[-1].file_size
        elif msg.document is not None and (msg.document.mime_type or "").startswith("image/"):
            file_id, size = msg.document.file_id, msg.document.file_size
        if file_id is None:
            return None
        if size is not None and size > MAX_PHOTO_BYTES:
            return _("That photo is too large.")
        tg_file = await context.bot.get_file(file_id)
        data = bytes(await tg_file.download_as_bytearray())
        try:
            return await self.photos.clean(data, "photo")
        except ValidationFailed as e:
            kind = e.details["fields"][0]["type"]
            if kind in ("photo_too_large", "photo_too_many_pixels"):
                return _("That photo is too large.")
            if kind == "photo_unreadable":
                return _("That image could not be read. Please send another photo.")
            return _("Only JPEG, PNG or WebP images are accepted.")

    async def _photo(self, context: Context, chat: Chat, msg: Message) -> None:
        t = lambda m, **kw: self.t(chat, m, **kw)  # noqa: E731
        photo = await self._fetch_photo(context, msg)
        if photo is None:
            await self.prompt(context, chat, t("Please send a photo, or press the button to "
                                               "go on."))
            return
        if isinstance(photo, str):
            await self.prompt(context, chat, t(photo))
            return
        n = await store.add_photo(self.pool, chat.chat_id, chat.draft["id"], photo.content_type,
                                  photo.data, MAX_PHOTOS)
        if n >= MAX_PHOTOS:
            await self.say(context, chat, t("Photo %(n)s of %(max)s received.", n=n,
                                            max=MAX_PHOTOS))
            await self.advance(context, chat, "photos")
        else:
            await self.prompt(context, chat)

    # --- buttons ------------------------------------------------------------------------

    async def on_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        try:
            await query.answer()
        except BadRequest as e:
            # A button pressed long ago (or before a restart): Telegram no longer takes
            # the answer, but the press itself is still handled below.
            log.info("callback query not answered", extra={"error": e.message})
        chat = await self._chat(update)
        data = query.data or ""
        t = lambda m, **kw: self.t(chat, m, **kw)  # noqa: E731
        kind, _sep, arg = data.partition(":")
        state = chat.state
        stale = t("That button is no longer active.")

        if kind == "ans":
            await self._answer_button(context, chat, arg)
        elif kind == "sup":
            await self._support(context, chat, update, arg)
        elif kind == "rate":
            cid, _s, n = arg.partition(":")
            await self._feedback(context, chat, cid, rating=int(n) if n.isdigit() else None)
        elif kind == "disp":
            await self._feedback(context, chat, arg, dispute=True)
        elif kind == "r" and state == "region" and arg in self.catalog.regions:
            chat.draft["region"] = arg
            chat.draft.pop("category", None)
            await self.advance(context, chat, "region")
        elif kind == "c" and state == "category" and arg in {
                c.code for c in self.catalog.categories_for(chat.draft["region"])}:
            chat.draft["category"] = arg
            await self.advance(context, chat, "category")
        elif kind == "skip" and state == "location":
            chat.draft.update(lat=None, lon=None, address=None)
            await self.advance(context, chat, "location")
        elif kind == "done" and state == "photos":
            await self.advance(context, chat, "photos")
        elif kind == "pv" and state == "privacy" and arg in PRIVACY:
            chat.draft["privacy"] = arg
            if arg == "anonymous":
                # Anonymous: nothing about the citizen is asked or kept.
                chat.draft.pop("name", None)
                chat.draft.pop("phone", None)
            await self.advance(context, chat, "privacy")
        elif kind == "skip" and state == "phone":
            chat.draft["phone"] = None
            await self.advance(context, chat, "phone")
        elif kind == "vis" and state == "summary" and arg in VISIBILITY:
            chat.draft["visibility"] = arg
            await store.save_chat(self.pool, chat)
            await self.prompt(context, chat)
        elif kind == "ok" and state == "summary":
            await self._submit(context, chat)
        elif kind == "edit" and state == "summary":
            chat.state = "edit"
            await store.save_chat(self.pool, chat)
            await self.prompt(context, chat)
        elif kind == "sum" and state == "edit":
            chat.state = "summary"
            await store.save_chat(self.pool, chat)
            await self.prompt(context, chat)
        elif kind == "ed" and state == "edit" and arg in _EDITABLE:
            chat.draft["editing"] = True
            if arg == "photos":
                await store.drop_photos(self.pool, chat.chat_id)
            chat.state = arg
            await store.save_chat(self.pool, chat)
            await self.prompt(context, chat)
        elif state == "idle":
            await self.say(context, chat, stale + "\n\n" + self._help(chat))
        else:
            await self.prompt(context, chat, stale)

    async def _submit(self, context: Context, chat: Chat) -> None:
        d = chat.draft
        # The Idempotency-Key makes a repeated "Send" (or a restart between the
        # submission and saving the state) answer the same receipt, not a second
        # complaint; and it is how a notification finds this chat (see store).
        key = f"telegram:{chat.chat_id}:{d['id']}"
        await store.add_report(self.pool, key, chat.chat_id)
        photos = [Photo(ct, data) for ct, data in
                  await store.draft_photos(self.pool, chat.chat_id, d["id"])]
        location = None
        if d.get("lat") is not None or d.get("address"):
            location = Location(lat=d.get("lat"), lon=d.get("lon"), address=d.get("address"))
        privacy = d.get("privacy", "confidential")
        reporter = None
        if privacy != "anonymous":
            reporter = ReporterIn(name=d.get("name"), phone=d.get("phone"))
        try:
            receipt = await domain.submit_complaint(self.pool, self.catalog, self.settings,
                                                    SubmitCommand(
                region=d["region"], category=d["category"], description=d["description"],
                privacy=privacy, visibility=d.get("visibility", "private"), channel="telegram",
                location=location, reporter=reporter,
                photos=photos, idempotency_key=key, request_hash=b""))
        except ValidationFailed as e:
            log.warning("telegram report refused", extra={"details": e.details})
            chat.state = "edit"
            await store.save_chat(self.pool, chat)
            await self.prompt(context, chat, self.t(chat, "Something in the report is not "
                                                          "valid; please change it."))
            return
        await store.report_submitted(self.pool, key, uuid.UUID(receipt.complaint_id))
        await store.drop_photos(self.pool, chat.chat_id)
        chat.state, chat.draft = "idle", {}
        await store.save_chat(self.pool, chat)
        await self.say(context, chat, self.t(
            chat, "Thank you, your complaint is recorded.\n\nTracking code: %(code)s\n"
                  "Follow-up secret: %(secret)s\n\nKeep both: with them you can follow the "
                  "complaint on the web too. We will tell you here of every change. "
                  "/status %(code)s shows where it stands.",
            code=receipt.tracking_code, secret=receipt.secret))

    # --- answering the agency, rating, disputing ---------------------------------------

    async def _owned(self, chat: Chat, complaint_id: str) -> tuple[asyncpg.Record, str] | None:
        """The complaint and its secret, if this chat reported it."""
        try:
            cid = uuid.UUID(complaint_id)
        except ValueError:
            return None
        key = await store.report_of(self.pool, chat.chat_id, cid)
        row = await db.complaint_by_id(self.pool, cid) if key else None
        if row is None or key is None:
            return None
        return row, secret_for(self.settings, cid, key)

    async def _answer_button(self, context: Context, chat: Chat, complaint_id: str) -> None:
        owned = await self._owned(chat, complaint_id)
        if owned is None:
            await self.say(context, chat, self.t(chat, "That button is no longer active."))
            return
        chat.answer_for = owned[0]["id"]
        await store.save_chat(self.pool, chat)
        if chat.state != "idle":
            await self.say(context, chat, self.t(chat, "Finish or cancel (/batal) the report "
                                                       "you are writing, then type your answer."))
            return
        await self.say(context, chat, self.t(chat, "Type your answer to the agency's question "
                                                   "for %(code)s.",
                                             code=owned[0]["tracking_code"]))

    async def _answer(self, context: Context, chat: Chat, complaint_id: uuid.UUID,
                      msg: Message) -> None:
        """The citizen's answer to the agency's question (text, or a photo with an
        optional caption) reaches the ticket through ``add_info``."""
        owned = await self._owned(chat, str(complaint_id))
        if owned is None:
            chat.answer_for = None
            await store.save_chat(self.pool, chat)
            await self.say(context, chat, self._help(chat))
            return
        row, secret = owned
        photo = await self._fetch_photo(context, msg)
        if isinstance(photo, str):
            await self.say(context, chat, self.t(chat, photo))  # still waiting for the answer
            return
        text = (msg.text or msg.caption or "").strip() or self.t(chat, "(photo)")
        try:
            await domain.add_info(self.pool, row["tracking_code"],
                                  InfoIn(secret=secret, message=text[:domain.DESCRIPTION_MAX]),
                                  photos=[photo] if photo else [])
        except NotAllowedNow:
            await self.say(context, chat, self.t(chat, "This complaint takes no more "
                                                       "information."))
        else:
            await self.say(context, chat, self.t(chat, "Thank you, your answer was passed on "
                                                       "to the agency (%(code)s).",
                                                 code=row["tracking_code"]))
        chat.answer_for = None
        await store.save_chat(self.pool, chat)

    async def _feedback(self, context: Context, chat: Chat, complaint_id: str, *,
                        rating: int | None = None, dispute: bool = False) -> None:
        owned = await self._owned(chat, complaint_id)
        if owned is None or (rating is None and not dispute):
            await self.say(context, chat, self.t(chat, "That button is no longer active."))
            return
        row, secret = owned
        try:
            await domain.give_feedback(self.pool, self.catalog, row["tracking_code"],
                                       FeedbackIn(secret=secret, rating=rating, dispute=dispute))
        except (NotAllowedNow, ApiError):
            await self.say(context, chat, self.t(chat, "Feedback on %(code)s is not possible "
                                                       "now (already given, or the time to "
                                                       "dispute has passed).",
                                                 code=row["tracking_code"]))
            return
        if dispute:
            text = self.t(chat, "Noted: the problem is not fixed. Your complaint %(code)s goes "
                                "to the oversight panel for review.", code=row["tracking_code"])
        else:
            text = self.t(chat, "Thank you for your rating (%(rating)s of 5) of %(code)s.",
                          rating=rating, code=row["tracking_code"])
        await self.say(context, chat, text)
