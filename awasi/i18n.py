"""Bahasa Indonesia first, English second.

Messages are written in English in code and templates (``_("...")``) and translated
in gettext ``.po`` files, one per locale, read at start with Babel (no compile step).
``id`` is the default; a message missing from a catalog falls back to the English
msgid, and a test checks the Indonesian catalogs are complete.

Pages pick the locale from ``?lang=``, then the ``awasi_lang`` cookie, then the
browser's ``Accept-Language``, else Indonesian. The bot uses the Telegram user's
language code.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from babel.support import Translations

SUPPORTED = ("id", "en")
DEFAULT = "id"
COOKIE = "awasi_lang"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("awasi_locale", default=DEFAULT)


def normalize(code: str | None) -> str | None:
    """``'en-US'`` -> ``'en'``; ``None`` for a language we do not speak."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    if base == "in":  # the old ISO code for Indonesian, still sent by some phones
        base = "id"
    return base if base in SUPPORTED else None


def from_accept_language(header: str | None) -> str | None:
    if not header:
        return None
    weighted: list[tuple[float, str]] = []
    for part in header.split(","):
        lang, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        weighted.append((weight, lang))
    for _, lang in sorted(weighted, key=lambda w: -w[0]):
        if (code := normalize(lang)) is not None:
            return code
    return None


def negotiate(request: Any) -> tuple[str, bool]:
    """A staff page's locale from an aiohttp request: ``?lang=``, then the cookie, then
    ``Accept-Language``, else Indonesian. The flag says whether ``?lang=`` chose it
    (the caller then remembers it in the cookie)."""
    asked = normalize(request.query.get("lang"))
    if asked:
        return asked, True
    return (normalize(request.cookies.get(COOKIE))
            or from_accept_language(request.headers.get("Accept-Language"))
            or DEFAULT), False


class Catalogs:
    """Translations per locale from ``<folder>/<locale>.po`` files."""

    def __init__(self, *folders: Path) -> None:
        self._translations: dict[str, Translations] = {}
        for locale in SUPPORTED:
            merged: Translations | None = None
            for folder in folders:
                po = Path(folder) / f"{locale}.po"
                if not po.exists():
                    continue
                with po.open("rb") as f:
                    catalog = read_po(f, locale=locale)
                t = Translations()
                for message in catalog:
                    if message.id and message.string:
                        key = message.id if isinstance(message.id, str) else message.id[0]
                        t._catalog[key] = message.string  # noqa: SLF001 - Babel's own store
                merged = t if merged is None else merged.merge(t) or merged
            self._translations[locale] = merged or Translations()

    def gettext(self, message: str, locale: str | None = None, **params: Any) -> str:
        t = self._translations.get(locale or _current.get())
        text = t.gettext(message) if t else message
        return text % params if params else text

    def ngettext(self, singular: str, plural: str, n: int, locale: str | None = None,
                 **params: Any) -> str:
        t = self._translations.get(locale or _current.get())
        text = t.ngettext(singular, plural, n) if t else (singular if n == 1 else plural)
        params.setdefault("num", n)
        return text % params

    def missing(self, locale: str, messages: Iterator[str]) -> list[str]:
        t = self._translations.get(locale)
        return [m for m in messages if t is None or m not in t._catalog]  # noqa: SLF001


def set_locale(locale: str) -> contextvars.Token[str]:
    return _current.set(locale)


@contextlib.contextmanager
def using_locale(locale: str) -> Iterator[None]:
    """``locale`` for the templates' ``_()`` inside the block (a page rendered in
    another language than the request's, as a report's PDF), restored afterwards."""
    token = _current.set(locale)
    try:
        yield
    finally:
        _current.reset(token)


def current_locale() -> str:
    return _current.get()
