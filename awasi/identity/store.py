"""Users, passwords, tokens and login throttling in the ``identity`` schema."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from awasi.identity.errors import InvalidCredentials, InvalidUser, LoginThrottled, UserExists

Role = Literal["staff", "head", "triage", "panel", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
TOKEN_TTL = timedelta(hours=12)
THROTTLE_WINDOW = timedelta(minutes=1)

_hasher = PasswordHasher()  # stateless parameters object, safe to share
# Verifying against this hash for unknown users makes "unknown user" cost as much
# time as "wrong password", so timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("awasi-dummy-password")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    agency: str | None
    region: str | None
    active: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "name": self.display_name,
                "role": self.role, "agency": self.agency, "region": self.region}

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> User:
        return cls(id=row["id"], username=row["username"], display_name=row["display_name"],
                   role=row["role"], agency=row["agency"], region=row["region"],
                   active=row["active"])


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def hash_password(password: str) -> str:
    # Argon2 is deliberately slow (tens of ms): keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


async def add_user(
    pool: asyncpg.Pool | asyncpg.Connection, *, username: str, password: str, role: str,
    agency: str | None = None, region: str | None = None, display_name: str | None = None,
    exist_ok: bool = False,
) -> User:
    """Create a user; return it. Raises ``InvalidUser`` for an unknown role, a staff or
    head without agency or a password under 8 characters, ``UserExists`` if the
    username is taken (unless ``exist_ok``, which returns the existing user unchanged).
    Catalog codes are checked by the caller (the CLI validates them)."""
    if role not in ROLES:
        raise InvalidUser(f"role must be one of {', '.join(ROLES)}")
    if role in ("staff", "head") and not agency:
        raise InvalidUser(f"a {role} needs an agency")
    if len(password) < 8:
        raise InvalidUser("password must have at least 8 characters")
    hashed = await hash_password(password)
    try:
        row = await pool.fetchrow(
            "INSERT INTO identity.users (username, display_name, role, agency, region,"
            " password_hash) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (username) DO NOTHING RETURNING *",
            username, display_name or username, role, agency, region, hashed,
        )
    except asyncpg.CheckViolationError as e:
        raise InvalidUser(f"invalid user: {e.constraint_name}") from e
    if row is None:
        if not exist_ok:
            raise UserExists(username)
        row = await pool.fetchrow("SELECT * FROM identity.users WHERE username = $1", username)
    return User.from_row(row)


async def _check_throttle(pool: asyncpg.Pool, username: str, address: str, limit: int) -> None:
    row = await pool.fetchrow(
        "SELECT"
        " count(*) FILTER (WHERE username = $1) AS by_user,"
        " count(*) FILTER (WHERE address = $2) AS by_address,"
        " min(attempted_at) AS oldest"
        " FROM identity.login_failures"
        " WHERE (username = $1 OR address = $2) AND attempted_at > now() - $3::interval",
        username, address, THROTTLE_WINDOW,
    )
    if row["by_user"] >= limit or row["by_address"] >= limit:
        elapsed = datetime.now(UTC) - row["oldest"]
        raise LoginThrottled(max(1, int((THROTTLE_WINDOW - elapsed).total_seconds()) + 1))


async def login(
    pool: asyncpg.Pool, username: str, password: str, address: str, *,
    limit_per_minute: int = 10, ttl: timedelta = TOKEN_TTL,
) -> tuple[User, str]:
    """Check the password; return the user and a new opaque token (valid ``ttl``).

    Raises ``LoginThrottled`` when the username or the address had ``limit_per_minute``
    failed attempts within the last minute (checked before the password, so a
    throttled guesser learns nothing), ``InvalidCredentials`` for an unknown user, a
    wrong password or an inactive account, all alike.
    """
    await _check_throttle(pool, username, address, limit_per_minute)
    row = await pool.fetchrow("SELECT * FROM identity.users WHERE username = $1", username)
    ok = await asyncio.to_thread(_verify, row["password_hash"] if row else _DUMMY_HASH, password)
    if row is None or not ok or not row["active"]:
        await pool.execute(
            "INSERT INTO identity.login_failures (username, address) VALUES ($1, $2)",
            username, address,
        )
        raise InvalidCredentials("wrong username or password")
    token = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO identity.tokens (token_hash, user_id, expires_at)"
        " VALUES ($1, $2, now() + $3::interval)",
        hash_token(token), row["id"], ttl,
    )
    # Old failures and expired tokens are pruned here rather than by a timer.
    await pool.execute(
        "DELETE FROM identity.login_failures WHERE attempted_at < now() - interval '1 day'"
    )
    await pool.execute("DELETE FROM identity.tokens WHERE expires_at < now()")
    return User.from_row(row), token


async def authenticate(pool: asyncpg.Pool, token: str | None) -> User | None:
    """The active user holding the unexpired ``token``, else ``None``."""
    if not token or len(token) > 200:
        return None
    row = await pool.fetchrow(
        "SELECT u.* FROM identity.tokens t JOIN identity.users u ON u.id = t.user_id"
        " WHERE t.token_hash = $1 AND t.expires_at > now() AND u.active",
        hash_token(token),
    )
    return User.from_row(row) if row else None


async def logout(pool: asyncpg.Pool, token: str) -> None:
    """Revoke ``token`` (no error if it is unknown)."""
    await pool.execute("DELETE FROM identity.tokens WHERE token_hash = $1", hash_token(token))


async def get_user(pool: asyncpg.Pool, username: str) -> User | None:
    row = await pool.fetchrow("SELECT * FROM identity.users WHERE username = $1", username)
    return User.from_row(row) if row else None
