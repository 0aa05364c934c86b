"""Where a login may send the browser next: same-site paths only.

An open redirect (``/login?next=https://evil.example``) lets a phishing link start
on our own domain and end on a look-alike login page. Browsers are lenient about
what they read as "another host": ``//evil``, ``/\\evil``, ``\\t//evil`` (they strip
tabs and newlines), ``https:evil``; and a value may be percent-encoded once or
twice on its way. So a value is accepted only if it is plain printable ASCII, a
path starting with one ``/``, with no backslash, no scheme and no host, and its
path still starts with one ``/`` and holds no backslash or control character after
percent-decoding (repeatedly: a proxy or framework on the way may decode once more).
The prefix check runs on the decoded path with dot segments resolved, so
``/panel/%2e%2e/x`` is not "under /panel". Anything else gives the default.
"""

from __future__ import annotations

import posixpath
import urllib.parse

_MAX_LENGTH = 2000
_DECODE_ROUNDS = 4


def _plain(text: str) -> bool:
    """Printable ASCII only: no whitespace, no control or non-ASCII character."""
    return all(0x21 <= ord(c) <= 0x7E for c in text)


def _no_controls(text: str) -> bool:
    return all(ord(c) >= 0x20 and ord(c) != 0x7F and not 0x80 <= ord(c) <= 0x9F
               for c in text)


def _local_path(path: str) -> bool:
    return path.startswith("/") and not path.startswith("//") and "\\" not in path


def safe_next(value: object, *, default: str = "/", prefix: str = "/") -> str:
    """``value`` if it is a same-site path under ``prefix`` (``/panel`` accepts
    ``/panel`` and ``/panel/...``), else ``default``."""
    if not isinstance(value, str) or not value or len(value) > _MAX_LENGTH:
        return default
    if not _plain(value) or not _local_path(value):
        return default
    parts = urllib.parse.urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    path = parts.path
    for _ in range(_DECODE_ROUNDS):
        decoded = urllib.parse.unquote(path)
        if decoded == path:
            break
        path = decoded
    else:
        return default  # still encoded after several rounds: nobody needs that
    if not _no_controls(path) or not _local_path(path):
        return default
    if prefix != "/":
        resolved = posixpath.normpath(path)
        if resolved != prefix and not resolved.startswith(prefix.rstrip("/") + "/"):
            return default
    return value
