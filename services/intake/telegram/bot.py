"""The bot's life cycle inside the intake app, and its webhook.

- Webhook mode (default): Telegram calls ``POST /telegram/webhook``; the handler
  checks ``X-Telegram-Bot-Api-Secret-Token`` (constant time), stores the update in
  ``intake.telegram_inbox`` and only then answers 200; the inbox worker
  (``inbox.Inbox``) hands stored updates to ``application.process_update``, per chat
  in order, chats concurrently. PTB's own webhook server is a separate Tornado
  server, so it is not used: the bot runs with ``updater(None)`` inside our app.
  Registering the webhook address with Telegram (``setWebhook``) is the operator's
  step (docs/TELEGRAM.md), as only they know the public address.
- Polling mode (``AWASI_TELEGRAM_MODE=polling``, for a machine with no public address):
  PTB's updater long-polls ``getUpdates``. Run exactly one intake process like this.
- No token (``AWASI_TELEGRAM_TOKEN`` empty): the bot is off, logged once; the webhook
  answers 404. Until the bot has reached the Bot API (``getMe``) it answers 503.

Either way the notification sender runs as a background task of the same context.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.error import InvalidToken, NetworkError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from awasi import logredact
from awasi.settings import Settings
from awasi.web import keys
from awasi.web.app import background, pause
from awasi.web.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
)
from awasi.web.responses import json_response
from services.intake import keys as ikeys
from services.intake.telegram import inbox
from services.intake.telegram.conversation import Conversation
from services.intake.telegram.inbox import Inbox
from services.intake.telegram.metrics import BotMetrics
from services.intake.telegram.sender import Sender
from services.intake.telegram.survey import SurveyBot

log = logging.getLogger(__name__)

TelegramApp = Application[Any, Any, Any, Any, Any, Any]
APPLICATION = web.AppKey("intake.telegram", Application)
SENDER = web.AppKey("intake.telegram_sender", Sender)
INBOX = web.AppKey("intake.telegram_inbox", Inbox)
METRICS = web.AppKey("intake.telegram_metrics", BotMetrics)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def build_application(settings: Settings, conversation: Conversation) -> TelegramApp:
    """The PTB application against ``AWASI_TELEGRAM_API_URL``, with Telegram's rate
    limits kept by ``AIORateLimiter`` (it raises ``RetryAfter`` instead of retrying:
    the notification queue retries durably)."""
    api = settings.telegram_api_url.rstrip("/")
    builder = (ApplicationBuilder().token(settings.telegram_token)
               .base_url(f"{api}/bot").base_file_url(f"{api}/file/bot")
               .rate_limiter(AIORateLimiter(max_retries=0)))
    if settings.telegram_mode != "polling":
        builder = builder.updater(None)
    application = builder.build()
    # The survey's handlers first: its deep link and buttons take precedence.
    SurveyBot(conversation).register(application)
    conversation.register(application)
    return application


def setup(app: web.Application) -> None:
    """Mount ``POST /telegram/webhook`` and the bot's context on the intake app."""
    app[keys.OPENAPI].add(app.router, "POST", "/telegram/webhook", webhook,
                          summary="Telegram Bot API webhook (checks the secret token)",
                          tags=["telegram"], responses={200: {"type": "object"}},
                          errors=(400, 401, 403, 404, 413, 503))
    app.cleanup_ctx.append(bot_ctx)


async def bot_ctx(app: web.Application) -> AsyncIterator[None]:
    """The bot for the app's lifetime. It starts in the background: intake takes
    complaints whether or not Telegram can be reached when it starts."""
    settings = app[keys.SETTINGS]
    if not settings.telegram_token:
        log.info("Telegram bot is off: AWASI_TELEGRAM_TOKEN is empty")
        yield
        return
    # The token is in every Bot API URL, which httpx and PTB log (from the Bot's
    # constructor on): redact it from every log record while the bot exists.
    logredact.add_secret(settings.telegram_token)
    try:
        async with _bot_lifetime(app, settings):
            yield
    finally:
        logredact.remove_secret(settings.telegram_token)


@contextlib.asynccontextmanager
async def _bot_lifetime(app: web.Application, settings: Settings) -> AsyncIterator[None]:
    metrics = BotMetrics(app[keys.REGISTRY])
    conversation = Conversation(settings, app[ikeys.CATALOG], lambda: app[keys.POOL], metrics,
                                photos=app[ikeys.PHOTOS],
                                support_limiter=app[ikeys.SUPPORT_LIMITER],
                                trigram=lambda: app.get(ikeys.TRIGRAM, False))
    application = build_application(settings, conversation)
    app[APPLICATION] = application
    sender = Sender(app[keys.POOL], application.bot, app[ikeys.CATALOG],
                    interval_s=min(0.5, settings.relay_poll_interval_s), metrics=metrics,
                    intake_url=settings.intake_url)
    app[SENDER] = sender
    app[METRICS] = metrics

    async def handle(data: dict[str, Any]) -> None:
        await application.process_update(Update.de_json(data, application.bot))

    app[INBOX] = updates = Inbox(app[keys.POOL], handle,
                                 concurrency=inbox.lanes(settings.db_pool_max),
                                 tracer_provider=app[keys.TRACER_PROVIDER])
    # A stop lets the notification in hand be sent and recorded before the pool closes.
    async with background(run_bot(settings, application, sender, updates), "telegram-bot",
                          stopping=sender.stopping, grace_s=settings.shutdown_timeout_s):
        yield


async def run_bot(settings: Settings, application: TelegramApp, sender: Sender,
                  updates: Inbox | None = None) -> None:
    """Initialise the bot (``getMe``), retrying while the Bot API cannot be reached;
    then receive updates and deliver notifications until cancelled, and stop cleanly.
    A refused token turns the bot off (logged), it is not retried."""
    delay = 1.0
    while True:
        try:
            await application.initialize()
            break
        except InvalidToken:
            log.exception("Telegram bot is off: the Bot API refused AWASI_TELEGRAM_TOKEN")
            return
        except NetworkError as e:
            log.warning("Telegram Bot API unreachable; retrying",
                        extra={"error": str(e), "retry_in_s": delay})
            await pause(sender.stopping, delay)
            if sender.stopping.is_set():
                return  # stopped before the bot ever started
            delay = min(delay * 2, 60.0)
    polling = settings.telegram_mode == "polling"
    try:
        await application.start()
        if polling:
            assert application.updater is not None
            await application.updater.start_polling(drop_pending_updates=False)
        elif not settings.telegram_webhook_secret:
            log.warning("Telegram webhook refuses every call: "
                        "AWASI_TELEGRAM_WEBHOOK_SECRET is empty")
        log.info("Telegram bot is on", extra={"mode": settings.telegram_mode})
        if polling or updates is None:
            await sender.run()
        else:
            await _send_and_receive(sender, updates)
    finally:
        # Also on cancellation: pending updates are handled before stop() returns.
        if polling and application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()


async def _send_and_receive(sender: Sender, updates: Inbox) -> None:
    """The notifications and the webhook's stored updates side by side, until the
    sender stops (``stopping``: after the notification in hand is recorded) or
    either loop dies (raised here, as ``gather`` would); the inbox is then cancelled,
    which lets the updates in hand finish."""
    sending = asyncio.ensure_future(sender.run())
    receiving = asyncio.ensure_future(updates.run())
    try:
        done, _ = await asyncio.wait({sending, receiving},
                                     return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in (sending, receiving):
            task.cancel()
        await asyncio.gather(sending, receiving, return_exceptions=True)


async def webhook(request: web.Request) -> web.Response:
    """``POST /telegram/webhook``: 401 without the secret header, 403 with a wrong one
    (or none configured), 404 when the bot is off, 503 until it is ready, 400 for a
    body that is not an update, 413 above ``max_request_bytes``; else 200 once the
    update is stored (a failure to store it is a 500, and Telegram retries)."""
    app = request.app
    application = app.get(APPLICATION)
    if application is None or app[keys.SETTINGS].telegram_mode == "polling":
        raise NotFound("The Telegram bot is not enabled on this server")
    if not application.running:
        # Still reaching the Bot API (or stopping): Telegram retries a failed call.
        raise Unavailable("The Telegram bot is not ready", headers={"Retry-After": "5"})
    expected = app[keys.SETTINGS].telegram_webhook_secret
    given = request.headers.get(SECRET_HEADER)
    if given is None:
        raise Unauthorized(f"Missing {SECRET_HEADER}")
    # Constant time, so the secret cannot be found a character at a time.
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden(f"Wrong {SECRET_HEADER}")
    limit = app[keys.SETTINGS].max_request_bytes
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge("A Telegram update is never this large",
                              details={"max_bytes": limit})
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise BadRequest("The body is not a Telegram update") from e
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise BadRequest("The body is not a Telegram update")
    try:
        update = Update.de_json(data, application.bot)
    except (ValueError, TypeError, KeyError):
        # An update we cannot read: answering an error would make Telegram send it
        # again and again, holding up the chat's later updates. Log it and move on.
        log.warning("unreadable telegram update dropped", exc_info=True,
                    extra={"update_id": data["update_id"]})
        return json_response({"ok": True, "ignored": True})
    chat = update.effective_chat
    # Stored before the 200: if this fails, the error answer makes Telegram retry.
    outcome = await inbox.store_update(app[keys.POOL], update.update_id,
                                       chat.id if chat else None, raw)
    if outcome == "stored":
        app[INBOX].wake()
    else:
        app[METRICS].updates.labels(outcome).inc()
        if outcome == "flood":
            log.warning("telegram update dropped: too many waiting for the chat",
                        extra={"update_id": update.update_id})
    return json_response({"ok": True})
