"""Outgoing e-mail: the ``AWASI_SMTP_URL`` parsed once, and an SMTP client on it.

``smtp://user:password@host:port`` is plain SMTP (port 25 by default), with
``?starttls=true`` upgraded by STARTTLS before anything is sent (port 587 by
default); ``smtps://`` is SMTP over implicit TLS (port 465 by default). The user name
and password are URL-encoded in the address (``%40`` for ``@``). Delivery goes
through aiosmtplib, aio-libs' maintained asyncio SMTP client; messages are built
with the standard library's ``email.message.EmailMessage``.

This module only talks to a server; what is sent, to whom and when, and the retries,
are the caller's (intake's e-mail queue, ``services/intake/mail``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

TRUE = {"1", "true", "yes", "on"}


class MailConfigError(ValueError):
    """``AWASI_SMTP_URL`` or ``AWASI_MAIL_FROM`` is malformed (the message names it)."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    starttls: bool = False
    timeout_s: float = 30.0

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        """Parse ``smtp[s]://[user[:password]@]host[:port][?starttls=true]``.

        Raises ``MailConfigError`` naming ``AWASI_SMTP_URL`` for anything else. The
        message never repeats the address, which may hold a password."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as e:
            raise MailConfigError("AWASI_SMTP_URL is not a valid smtp:// address") from e
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise MailConfigError(
                "AWASI_SMTP_URL must look like smtp://user:password@host:port"
                " (or smtps:// for implicit TLS)")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["false"])[-1].lower() in TRUE
        implicit = parts.scheme == "smtps"
        if implicit and starttls:
            raise MailConfigError("AWASI_SMTP_URL: smtps:// is TLS already; drop ?starttls")
        default_port = 465 if implicit else (587 if starttls else 25)
        return cls(host=parts.hostname, port=port or default_port,
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   implicit_tls=implicit, starttls=starttls)

    def client(self) -> aiosmtplib.SMTP:
        """A client for one session (``async with config.client() as smtp``).
        STARTTLS is used exactly when asked for: never silently skipped, never tried
        on a server that was not said to have it."""
        return aiosmtplib.SMTP(hostname=self.host, port=self.port, username=self.username,
                               password=self.password, use_tls=self.implicit_tls,
                               start_tls=self.starttls, timeout=self.timeout_s)


def check_sender(address: str) -> str:
    """``AWASI_MAIL_FROM`` as given (``Name <addr@host>`` or ``addr@host``); raises
    ``MailConfigError`` when it holds no address with a domain."""
    _, addr = parseaddr(address)
    if "@" not in addr or not addr.rsplit("@", 1)[1]:
        raise MailConfigError("AWASI_MAIL_FROM must be an e-mail address, e.g."
                              " 'Awasi <awasi@kota.go.id>'")
    return address


def sender_domain(address: str) -> str:
    """The domain of ``AWASI_MAIL_FROM``, for Message-IDs."""
    return parseaddr(address)[1].rsplit("@", 1)[1]


def is_permanent(error: BaseException) -> bool:
    """An SMTP answer that trying again will not change (5xx: unknown mailbox, refused
    sender or content). Everything else (4xx, a dropped connection, a timeout, a
    server that cannot be reached) is worth another attempt later."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in error.recipients)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return False  # our configuration; the operator fixes it and the queue resumes
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code >= 500
    return False


async def send_all(smtp: aiosmtplib.SMTP, messages: Sequence[EmailMessage]
                   ) -> list[BaseException | None]:
    """Send each message over one open session; per message ``None`` (accepted) or the
    error it met. A lost connection fails the rest with the same error."""
    out: list[BaseException | None] = []
    for i, message in enumerate(messages):
        try:
            await smtp.send_message(message)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
                ConnectionError) as e:
            out.extend([e] * (len(messages) - i))
            break
        except aiosmtplib.SMTPException as e:
            out.append(e)
        else:
            out.append(None)
    return out
