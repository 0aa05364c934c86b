"""Staff identity, shared by the router and oversight (schema ``identity``).

People with a role (``staff``, ``head``, ``triage``, ``panel``, ``admin``) and, for
staff and heads, an agency; Argon2 password hashes; opaque tokens (stored as their
SHA-256) that serve both as ``Authorization: Bearer`` API tokens and as the desk's
session cookie; login throttling per username and per client address.

This package owns the ``identity`` schema; services never touch its tables
directly, only these functions.
"""

from __future__ import annotations

from typing import Any

# Import the SQL folder's package first: importing a submodule sets it as an
# attribute of this package, which would otherwise replace migrations() below the
# first time anyone loads "awasi.identity.migrations".
import awasi.identity.migrations as _sql  # noqa: F401
from awasi.db import load_migrations
from awasi.identity.errors import (
    IdentityError,
    InvalidCredentials,
    LoginThrottled,
    UserExists,
)
from awasi.identity.store import (
    ROLES,
    TOKEN_TTL,
    Role,
    User,
    add_user,
    agency_members,
    authenticate,
    login,
    logout,
)
from awasi.identity.web import (
    SESSION_COOKIE,
    add_auth_routes,
    csrf_token,
    require_user,
    verify_csrf,
)

SCHEMA = "identity"


def migrations() -> list[Any]:
    """The identity schema's migrations (no outbox: identity publishes no events).
"""
    return load_migrations("awasi.identity.migrations")


__all__ = [
    "ROLES",
    "SCHEMA",
    "SESSION_COOKIE",
    "TOKEN_TTL",
    "IdentityError",
    "InvalidCredentials",
    "LoginThrottled",
    "Role",
    "User",
    "UserExists",
    "add_auth_routes",
    "add_user",
    "agency_members",
    "authenticate",
    "csrf_token",
    "login",
    "logout",
    "migrations",
    "require_user",
    "verify_csrf",
]
