"""The admin pages on the router (role ``admin``): staff accounts (list in keyset
pages, add, disable and enable, reset a password, change role, agency and region),
and the page where anyone logged in changes their own password.

Every change goes through ``awasi.identity.store`` and lands in the identity
schema's account audit log (who, what, when, on whom), which the oversight panel
reads. Every form carries the session's CSRF token (``require_user`` checks it).
An admin never types a password for someone else: a reset or a new account gets a
generated one, shown once on the answer page and never stored in clear.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from aiohttp import web

from awasi.identity import ROLES, User
from awasi.identity.errors import InvalidUser, UnknownUser, UserExists
from awasi.identity.store import (
    add_user,
    get_account,
    list_accounts,
    set_active,
    set_password,
    update_account,
)
from awasi.identity.web import change_own_password, require_user
from awasi.web import keys
from awasi.web.body import read_form
from awasi.web.errors import ApiError, Forbidden, NotFound
from services.router.keys import CATALOG, MESSAGES

ADMIN = ("admin",)
# The identity schema's username rule (0100_init.sql): anything else names nobody.
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
PAGE_SIZE = 50
AGENCY_ROLES = ("staff", "head")


def generated_password() -> str:
    """A fresh random password (96 bits, URL-safe), for an admin to hand over once."""
    return secrets.token_urlsafe(12)


def _text(request: web.Request, message: str, **params: Any) -> str:
    return request.app[MESSAGES].gettext(message, **params)


def _field(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


class PlacementError(Exception):
    """A role, agency or region the form cannot take; the message is for the page."""


def _placement(request: web.Request, role: str, agency: str,
               region: str) -> tuple[str | None, str | None]:
    """The (agency, region) a role keeps, checked against the catalog; raises
    ``PlacementError`` with a message for the page."""
    catalog = request.app[CATALOG]
    if role not in ROLES:
        raise PlacementError(_text(request, "Choose a role."))
    if role in AGENCY_ROLES:
        if agency not in catalog.agencies:
            raise PlacementError(_text(request, "Staff and heads need an agency from the list."))
        return agency, None
    if role == "triage":
        if region and region not in catalog.regions:
            raise PlacementError(_text(request, "Choose a region from the list."))
        return None, region or None
    return None, None


async def accounts_page(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, ADMIN)
    return await _render_list(request, user)


async def _render_list(request: web.Request, user: User, *, error: str | None = None,
                       notice: str | None = None, shown_password: str | None = None,
                       form: dict[str, str] | None = None, status: int = 200) -> web.Response:
    from services.router.desk import render

    after = request.query.get("after") or None
    if after is not None and not USERNAME.fullmatch(after):
        after = None  # not a username: start from the top
    rows = await list_accounts(request.app[keys.POOL], after=after, limit=PAGE_SIZE + 1)
    catalog = request.app[CATALOG]
    return render(request, "admin_accounts.html", {
        "user": user, "accounts": rows[:PAGE_SIZE],
        "next_after": rows[PAGE_SIZE - 1].user.username if len(rows) > PAGE_SIZE else None,
        "roles": ROLES, "agencies": list(catalog.agencies.values()),
        "regions": list(catalog.regions.values()), "error": error, "notice": notice,
        "shown_password": shown_password, "form": form or {},
    }, status=status)


async def add_submit(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, ADMIN)
    form = await read_form(request)
    values = {k: _field(form, k) for k in ("username", "name", "role", "agency", "region")}
    try:
        agency, region = _placement(request, values["role"], values["agency"],
                                    values["region"])
        password = generated_password()
        await add_user(request.app[keys.POOL], username=values["username"].lower(),
                       password=password, role=values["role"], agency=agency, region=region,
                       display_name=values["name"] or None, actor=user.username)
    except UserExists:
        return await _render_list(request, user, form=values, status=409,
                                  error=_text(request, "This username is taken."))
    except PlacementError as e:
        return await _render_list(request, user, form=values, status=422, error=str(e))
    except InvalidUser:
        return await _render_list(request, user, form=values, status=422, error=_text(
            request, "Usernames are 2 to 64 lower-case letters, digits, dots, dashes or"
            " underscores, starting with a letter or digit."))
    return await _render_list(
        request, user, shown_password=password,
        notice=_text(request, "Account %(username)s added.", username=values["username"].lower()))


async def account_page(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, ADMIN)
    return await _render_account(request, user)


async def _render_account(request: web.Request, user: User, *, error: str | None = None,
                          notice: str | None = None, shown_password: str | None = None,
                          status: int = 200) -> web.Response:
    from services.router.desk import render

    try:
        account = await get_account(request.app[keys.POOL], _target(request))
    except UnknownUser as e:
        raise NotFound(_text(request, "No such account.")) from e
    catalog = request.app[CATALOG]
    return render(request, "admin_account.html", {
        "user": user, "account": account, "roles": ROLES,
        "agencies": list(catalog.agencies.values()),
        "regions": list(catalog.regions.values()), "error": error, "notice": notice,
        "shown_password": shown_password, "is_self": account.user.username == user.username,
    }, status=status)


def _target(request: web.Request) -> str:
    """The account the path names; ``NotFound`` for what cannot be a username."""
    username = request.match_info["username"]
    if not USERNAME.fullmatch(username):
        raise NotFound(_text(request, "No such account."))
    return username


def _not_self(request: web.Request, user: User) -> None:
    # An admin cannot lock themselves out or drop their own role by a slip: another
    # admin (or the CLI) does that.
    if request.match_info["username"] == user.username:
        raise Forbidden(_text(request, "You cannot change your own account here."),
                        code="own_account")


async def account_action(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, ADMIN)
    action = request.match_info["action"]
    username = _target(request)
    pool = request.app[keys.POOL]
    try:
        if action in ("disable", "enable"):
            _not_self(request, user)
            await set_active(pool, username, action == "enable", actor=user.username)
            notice = _text(request, "Account disabled; its sessions have ended."
                           if action == "disable" else "Account enabled.")
            return await _render_account(request, user, notice=notice)
        if action == "reset-password":
            password = generated_password()
            await set_password(pool, username, password, actor=user.username,
                               action="password_reset")
            return await _render_account(
                request, user, shown_password=password,
                notice=_text(request, "Password reset; the account's sessions have ended."))
        if action == "update":
            _not_self(request, user)
            form = await read_form(request)
            role = _field(form, "role")
            try:
                agency, region = _placement(request, role, _field(form, "agency"),
                                            _field(form, "region"))
            except PlacementError as e:
                return await _render_account(request, user, error=str(e), status=422)
            await update_account(pool, username, role=role, agency=agency, region=region,
                                 actor=user.username)
            return await _render_account(request, user,
                                         notice=_text(request, "Account updated."))
    except UnknownUser as e:
        raise NotFound(_text(request, "No such account.")) from e
    except ApiError as e:
        if e.code != "own_account":
            raise
        return await _render_account(request, user, error=e.message, status=403)
    raise NotFound(_text(request, "No such account."))


async def password_page(request: web.Request) -> web.StreamResponse:
    from services.router.desk import render

    user = await require_user(request)
    return render(request, "account_password.html", {"user": user})


async def password_submit(request: web.Request) -> web.StreamResponse:
    from services.router.desk import render

    user = await require_user(request)
    form = await read_form(request)
    new = str(form.get("new_password", ""))
    if new != str(form.get("new_password_again", "")):
        return render(request, "account_password.html", {
            "user": user, "error": _text(request, "The two new passwords differ.")}, status=422)
    try:
        await change_own_password(request, user, str(form.get("current_password", "")), new)
    except ApiError as e:
        message = {
            "wrong_password": _text(request, "The current password is wrong."),
            "weak_password": _text(
                request, "This password is too easy to guess. Use at least 10 characters:"
                " a few uncommon words, for example."),
            "rate_limited": _text(request, "Too many wrong passwords; try again in a minute."),
        }.get(e.code)
        if message is None:
            raise
        return render(request, "account_password.html", {"user": user, "error": message},
                      status=e.status)
    return render(request, "account_password.html", {
        "user": user, "notice": _text(request, "Your password has been changed.")})


def add_pages(app: web.Application) -> None:
    from services.router.desk import page

    r = app.router
    r.add_get("/admin/accounts", page(accounts_page))
    r.add_post("/admin/accounts", page(add_submit))
    r.add_get("/admin/accounts/{username}", page(account_page))
    r.add_post("/admin/accounts/{username}/{action}", page(account_action))
    r.add_get("/account/password", page(password_page))
    r.add_post("/account/password", page(password_submit))
