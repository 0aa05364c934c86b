"""The Telegram bot of the intake service: report a complaint and follow it from a
chat. ``setup(app)`` mounts ``POST /telegram/webhook`` and the bot's life cycle
(webhook or polling mode, and the notification sender) on the intake app."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    from services.intake.telegram.bot import setup as _setup

    _setup(app)
