"""HTTP side of staff identity: who is calling (Bearer header or session cookie),
role checks, CSRF tokens for the desk's and the panel's forms (and the login forms'
double-submit token), the one login step every login form and endpoint goes through,
and the login endpoint that the router and oversight both mount (one identity: a
token from either works at both).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Iterable

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import BaseModel, ConfigDict, Field

from awasi.identity.errors import InvalidCredentials, LoginThrottled, WeakPassword
from awasi.identity.passwords import PasswordWorkers
from awasi.identity.store import (
    TOKEN_TTL,
    LoginLimits,
    User,
    authenticate,
    hash_token,
    login,
    logout,
    set_password,
    verify_current_password,
)
from awasi.identity.strength import check_password
from awasi.web import keys
from awasi.web.body import parse_json, read_form
from awasi.web.errors import Forbidden, RateLimited, Unauthorized, ValidationFailed
from awasi.web.responses import json_response

SESSION_COOKIE = "awasi_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_CSRF_COOKIE = "awasi_login_csrf"
PASSWORDS = web.AppKey("identity.passwords", PasswordWorkers)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Per-request cache of the caller (None: no valid credentials) and how they came.
_USER = web.RequestKey("awasi.identity.user", object)
_VIA_COOKIE = web.RequestKey("awasi.identity.via_cookie", bool)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    id: int
    username: str
    name: str
    role: str
    agency: str | None
    region: str | None


class LoginResponse(BaseModel):
    token: str
    user: UserOut


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def session_token(request: web.Request) -> str | None:
    """The session cookie's token, if the request carries one."""
    return request.cookies.get(SESSION_COOKIE) or None


def caller_token(request: web.Request) -> str | None:
    """The token the caller authenticated with, in the order ``current_user`` reads
    them: the Bearer header, then the session cookie. For a server-side call made on
    the caller's behalf (oversight reading notes at the router), never for a log."""
    return _bearer(request) or session_token(request)


def csrf_token(secret_key: str, session: str) -> str:
    """The CSRF token bound to a session: an HMAC of the session token's hash, so it
    needs no storage, changes with every login and cannot be computed by a page on
    another origin (which can neither read the HttpOnly cookie nor our pages)."""
    return hmac.new(secret_key.encode(), b"csrf:" + hash_token(session),
                    hashlib.sha256).hexdigest()


def verify_csrf(secret_key: str, session: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(secret_key, session),
                                                   presented or "")


async def current_user(request: web.Request) -> User | None:
    """The authenticated caller (Bearer token first, then session cookie), or None.
    Cached on the request."""
    if _USER in request:
        return request[_USER]  # type: ignore[no-any-return]
    pool = request.app[keys.POOL]
    user: User | None = None
    token = _bearer(request)
    via_cookie = False
    if token is not None:
        user = await authenticate(pool, token)
    else:
        token = session_token(request)
        if token is not None:
            user = await authenticate(pool, token)
            via_cookie = user is not None
    request[_USER] = user
    request[_VIA_COOKIE] = via_cookie
    return user


async def require_user(request: web.Request, roles: Iterable[str] | None = None) -> User:
    """The authenticated caller; raises ``Unauthorized`` (401) without a valid token,
    ``Forbidden`` (403) if the role is not in ``roles``, and ``Forbidden`` when a
    state-changing request authenticated by the session cookie lacks the CSRF token
    (form field ``csrf_token`` or header ``X-CSRF-Token``). Bearer requests need no
    CSRF token: a browser never adds that header on its own."""
    user = await current_user(request)
    if user is None:
        raise Unauthorized("Log in first (Bearer token or session cookie)",
                           headers={"WWW-Authenticate": "Bearer"})
    if request.method not in _SAFE_METHODS and request[_VIA_COOKIE]:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data"
        ):
            form = await read_form(request)
            value = form.get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        secret = request.app[keys.SETTINGS].secret_key
        if not verify_csrf(secret, session_token(request) or "", presented):
            raise Forbidden("Missing or invalid CSRF token", code="csrf_failed")
    if roles is not None and user.role not in set(roles):
        raise Forbidden("Your role may not do this")
    return user


def client_address(request: web.Request) -> str:
    # The real client: the socket peer, or behind a trusted proxy the address it
    # forwarded (awasi.web.proxies; AWASI_TRUSTED_PROXIES).
    return request.remote or "unknown"


def login_limits(request: web.Request) -> LoginLimits:
    # The ceilings are never below the pair's limit (raising that one for a load
    # test raises them too).
    s = request.app[keys.SETTINGS]
    pair = s.login_rate_limit_per_minute
    return LoginLimits(per_pair=pair,
                       per_account=max(pair, s.login_account_limit_per_minute),
                       per_address=max(pair, s.login_address_limit_per_minute))


async def attempt_login(request: web.Request, username: str, password: str) -> tuple[User, str]:
    """Log in as the request's client (its real address, the app's limits and
    Argon2 pool). Raises ``LoginThrottled`` or ``InvalidCredentials`` as ``login``."""
    return await login(request.app[keys.POOL], username, password, client_address(request),
                       limits=login_limits(request), passwords=request.app[PASSWORDS])


# --- the login forms' CSRF token ------------------------------------------------------
# Before login there is no session to bind a token to: the form carries a random
# token that must equal the one in a SameSite=Strict, HttpOnly cookie scoped to the
# form's path (double submit). A page on another site can neither read the cookie
# nor make the browser send it, so it cannot log a victim into its own account
# (login CSRF) or drive guesses through the victim's browser.

def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_login_csrf_cookie(request: web.Request, response: web.StreamResponse, token: str,
                          path: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict",
                        path=path, secure=request.secure)


def login_csrf_ok(request: web.Request, form: MultiDictProxy[object]) -> bool:
    """Whether the login form's token matches its cookie."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    presented = form.get(CSRF_FIELD, "")
    return bool(expected) and isinstance(presented, str) and secrets.compare_digest(
        expected.encode(), presented.encode())


async def passwords_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's Argon2 pool (``AWASI_PASSWORD_HASH_WORKERS`` threads), for its lifetime."""
    workers = PasswordWorkers(app[keys.SETTINGS].password_hash_workers)
    app[PASSWORDS] = workers
    try:
        yield
    finally:
        workers.close()


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="Lax", path="/",
        max_age=int(TOKEN_TTL.total_seconds()), secure=request.secure,
    )


async def login_handler(request: web.Request) -> web.Response:
    body = await parse_json(request, LoginRequest)
    try:
        user, token = await attempt_login(request, body.username, body.password)
    except LoginThrottled as e:
        raise RateLimited("Too many failed logins; try again later",
                          headers={"Retry-After": str(e.retry_after)}) from e
    except InvalidCredentials as e:
        raise Unauthorized("Wrong username or password") from e
    response = json_response({"token": token, "user": user.to_json()})
    set_session_cookie(request, response, token)
    return response


async def logout_handler(request: web.Request) -> web.Response:
    await require_user(request)
    token = _bearer(request) or session_token(request)
    if token:
        await logout(request.app[keys.POOL], token)
    response = json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def change_own_password(request: web.Request, user: User, current: str,
                              new: str) -> None:
    """A logged-in person changes their own password: the current one checked (and
    throttled like a login), the new one checked for strength; every other session
    and token of theirs ends, the one in use stays. Raises ``Forbidden``
    (``wrong_password``), ``ValidationFailed`` (``weak_password``), ``RateLimited``."""
    try:
        await verify_current_password(request.app[keys.POOL], user, current,
                                      client_address(request), limits=login_limits(request),
                                      passwords=request.app[PASSWORDS])
    except LoginThrottled as e:
        raise RateLimited("Too many wrong passwords; try again later",
                          headers={"Retry-After": str(e.retry_after)}) from e
    except InvalidCredentials as e:
        raise Forbidden("The current password is wrong", code="wrong_password") from e
    try:
        check_password(new, (user.username, user.display_name))
    except WeakPassword as e:
        raise ValidationFailed(str(e), code="weak_password") from e
    await set_password(request.app[keys.POOL], user.username, new, actor=user.username,
                       action="password_changed",
                       keep_token=_bearer(request) or session_token(request))


async def password_handler(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await parse_json(request, PasswordChange)
    await change_own_password(request, user, body.current_password, body.new_password)
    return json_response({"ok": True})


async def me_handler(request: web.Request) -> web.Response:
    user = await require_user(request)
    return json_response(user.to_json())


def add_auth_routes(app: web.Application) -> None:
    """Mount ``POST /api/v1/auth/login``, ``POST /api/v1/auth/logout``,
    ``POST /api/v1/auth/password`` and ``GET /api/v1/auth/me`` on ``app`` (which must
    have the pool under ``keys.POOL``), and open the Argon2 pool the login forms share
    (``attempt_login``)."""
    app.cleanup_ctx.append(passwords_ctx)
    api = app[keys.OPENAPI]
    api.add(app.router, "POST", "/api/v1/auth/login", login_handler, tags=["auth"],
            summary="Log in; answers a Bearer token and sets the session cookie",
            body=LoginRequest, responses={200: LoginResponse}, errors=(400, 401, 422, 429))
    api.add(app.router, "POST", "/api/v1/auth/logout", logout_handler, tags=["auth"],
            summary="Revoke the caller's token", responses={200: {"type": "object"}},
            secured=True, errors=())
    api.add(app.router, "POST", "/api/v1/auth/password", password_handler, tags=["auth"],
            summary="Change the caller's own password (current and new); ends the"
            " caller's other sessions", body=PasswordChange,
            responses={200: {"type": "object"}}, secured=True, errors=(400, 403, 422, 429))
    api.add(app.router, "GET", "/api/v1/auth/me", me_handler, tags=["auth"],
            summary="The caller", responses={200: UserOut}, secured=True, errors=())
