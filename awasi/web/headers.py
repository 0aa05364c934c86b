"""Security headers on every response of every service, in one place.

Added in ``on_response_prepare`` rather than a middleware: that signal runs for
every response just before its headers go out, including streamed ones (the desk's
long-polls) and static files, which a middleware sees only after they were sent.
A handler that sets one of these headers itself keeps its own value (a photo's
``default-src 'none'``, say).
"""

from __future__ import annotations

from aiohttp import web

from awasi.web.proxies import is_secure

# No inline script anywhere (scripts are static files of the same origin); no
# framing (clickjacking of the forms); forms post only to us; no plugins, no <base>.
# Inline *styles* are allowed: they cannot run code, and the router's and
# oversight's templates still carry style blocks (moving them out is a follow-up).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# A year; no includeSubDomains: the city's other hosts are not ours to decide.
HSTS = "max-age=31536000"

_ALWAYS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # for browsers without CSP frame-ancestors
    "Referrer-Policy": "same-origin",  # tracking codes in our URLs never leak
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: the headers above, HSTS when the request came by
    https (directly or through a trusted proxy), and every cookie ``Secure`` then."""
    for name, value in _ALWAYS.items():
        response.headers.setdefault(name, value)
    if is_secure(request):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
        _secure_cookies(response)


def _secure_cookies(response: web.StreamResponse) -> None:
    # Cookies set with set_cookie() live in response.cookies until prepare writes
    # them; a few are added as raw Set-Cookie headers (the desk's language cookie).
    for morsel in response.cookies.values():
        morsel["secure"] = True
    raw = response.headers.getall("Set-Cookie", [])
    if raw:
        del response.headers["Set-Cookie"]
        for value in raw:
            attrs = {a.strip().lower() for a in value.split(";")[1:]}
            response.headers.add("Set-Cookie",
                                 value if "secure" in attrs else f"{value}; Secure")
