"""E-mail to citizens who gave an address (web form, JSON API, Open311).

``notify.on_status_change`` queues one e-mail per visible change in
``intake.email_notifications`` inside the consumer's transaction; ``setup(app)`` runs
the sender (``sender.MailSender``) for the app's lifetime. With ``AWASI_SMTP_URL``
empty nothing is queued and no sender runs (docs/INTAKE.md, "E-mail")."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from awasi.web import keys
from awasi.web.app import background

log = logging.getLogger(__name__)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(mail_ctx)


async def mail_ctx(app: web.Application) -> AsyncIterator[None]:
    """The e-mail sender for the app's lifetime (needs the pool: runs after it)."""
    from services.intake import keys as ikeys
    from services.intake.mail.sender import MailSender

    settings = app[keys.SETTINGS]
    smtp = settings.smtp()
    if smtp is None:
        log.info("e-mail is off: AWASI_SMTP_URL is empty")
        yield
        return
    sender = MailSender(app[keys.BACKGROUND_POOL], app[ikeys.CATALOG], smtp,
                        mail_from=settings.mail_from, intake_url=settings.intake_url,
                        registry=app[keys.REGISTRY])
    # A stop finishes the batch in hand (sent and recorded) before the pool closes.
    async with background(sender.run(), "intake-mail", stopping=sender.stopping,
                          grace_s=settings.shutdown_timeout_s):
        yield
