"""Users, passwords, tokens and login throttling in the ``identity`` schema."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

import asyncpg

from awasi.identity.errors import (
    InvalidCredentials,
    InvalidUser,
    LoginThrottled,
    UnknownUser,
    UserExists,
)
from awasi.identity.passwords import HASHER, PasswordWorkers

Role = Literal["staff", "head", "triage", "panel", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
TOKEN_TTL = timedelta(hours=12)
THROTTLE_WINDOW = timedelta(minutes=1)



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
    # Argon2 is deliberately slow (tens of ms): keep it off the event loop. Used by
    # the CLI and the demo seed, one at a time; logins use PasswordWorkers.
    return await asyncio.to_thread(HASHER.hash, password)


async def add_user(
    pool: asyncpg.Pool | asyncpg.Connection, *, username: str, password: str, role: str,
    agency: str | None = None, region: str | None = None, display_name: str | None = None,
    exist_ok: bool = False, actor: str | None = None,
) -> User:
    """Create a user; return it. Raises ``InvalidUser`` for an unknown role, a staff or
    head without agency or a password under 8 characters, ``UserExists`` if the
    username is taken (unless ``exist_ok``, which returns the existing user unchanged).
    With ``actor`` (the CLI, the admin page) the creation goes into the audit log.
    Catalog codes are checked by the caller (the CLI validates them)."""
    if role not in ROLES:
        raise InvalidUser(f"role must be one of {', '.join(ROLES)}")
    if role in ("staff", "head") and not agency:
        raise InvalidUser(f"a {role} needs an agency")
    if len(password) < 8:
        raise InvalidUser("password must have at least 8 characters")
    hashed = await hash_password(password)
    try:
        # One statement: the user and its audit row (with ``actor``) or neither.
        row = await pool.fetchrow(
            "WITH u AS (INSERT INTO identity.users (username, display_name, role, agency,"
            " region, password_hash) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (username) DO NOTHING RETURNING *),"
            " a AS (INSERT INTO identity.account_audit (actor, action, target, details)"
            " SELECT $7, 'add', u.username, $8::jsonb FROM u WHERE $7::text IS NOT NULL)"
            " SELECT * FROM u",
            username, display_name or username, role, agency, region, hashed, actor,
            json.dumps({"role": role, "agency": agency, "region": region}),
        )
    except asyncpg.CheckViolationError as e:
        raise InvalidUser(f"invalid user: {e.constraint_name}") from e
    if row is None:
        if not exist_ok:
            raise UserExists(username)
        row = await pool.fetchrow("SELECT * FROM identity.users WHERE username = $1", username)
    return User.from_row(row)


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed logins allowed per window: per (account, client address) pair, and
    the much higher ceilings per account (from every client) and per client address
    (over every account)."""

    per_pair: int = 10
    per_account: int = 100
    per_address: int = 100
    window: timedelta = THROTTLE_WINDOW


# One statement takes the attempt's slot in all three counters and returns them.
# INSERT ... ON CONFLICT DO UPDATE locks each counter row, so concurrent attempts
# queue on it and each reads the count the previous one left: a burst cannot all
# pass a check made before any of them was counted. The account and address counters
# are only touched by attempts within their pair's limit (each reads the previous
# CTE), so a stranger hammering from one address spends only their pair's budget of
# the account's ceiling. The chain also fixes the lock order (pair, account,
# address, one row each), so two attempts never wait on each other in a cycle.
_TAKE_SLOT = """
WITH pair AS (
    INSERT INTO identity.login_throttle AS t (scope, key, window_start, attempts)
    VALUES ('pair', $1, now(), 1)
    ON CONFLICT (scope, key) DO UPDATE SET
        attempts = CASE WHEN t.window_start <= now() - $4::interval THEN 1
                        ELSE t.attempts + 1 END,
        window_start = CASE WHEN t.window_start <= now() - $4::interval THEN now()
                            ELSE t.window_start END
    RETURNING attempts, window_start
), account AS (
    INSERT INTO identity.login_throttle AS t (scope, key, window_start, attempts)
    SELECT 'account', $2, now(), 1 FROM pair WHERE pair.attempts <= $5
    ON CONFLICT (scope, key) DO UPDATE SET
        attempts = CASE WHEN t.window_start <= now() - $4::interval THEN 1
                        ELSE t.attempts + 1 END,
        window_start = CASE WHEN t.window_start <= now() - $4::interval THEN now()
                            ELSE t.window_start END
    RETURNING attempts, window_start
), address AS (
    INSERT INTO identity.login_throttle AS t (scope, key, window_start, attempts)
    SELECT 'address', $3, now(), 1 FROM account
    ON CONFLICT (scope, key) DO UPDATE SET
        attempts = CASE WHEN t.window_start <= now() - $4::interval THEN 1
                        ELSE t.attempts + 1 END,
        window_start = CASE WHEN t.window_start <= now() - $4::interval THEN now()
                            ELSE t.window_start END
    RETURNING attempts, window_start
)
SELECT
    CASE WHEN pair.attempts > $5 THEN pair.window_start
         WHEN account.attempts > $6 THEN account.window_start
         WHEN address.attempts > $7 THEN address.window_start
    END AS blocked_since,
    now() AS now
FROM pair LEFT JOIN account ON true LEFT JOIN address ON true
"""


def _pair_key(username: str, address: str) -> str:
    # An address never contains a space, so the first space splits the key.
    return f"{address} {username}"


async def _take_slot(pool: asyncpg.Pool, username: str, address: str,
                     limits: LoginLimits) -> None:
    """Count one attempt; raise ``LoginThrottled`` if it is over a limit (the
    attempt is then not checked at all)."""
    row = await pool.fetchrow(
        _TAKE_SLOT, _pair_key(username, address), username, address, limits.window,
        limits.per_pair, limits.per_account, limits.per_address,
    )
    if row["blocked_since"] is not None:
        elapsed = row["now"] - row["blocked_since"]
        raise LoginThrottled(max(1, int((limits.window - elapsed).total_seconds()) + 1))


async def _release_slot(pool: asyncpg.Pool, username: str, address: str) -> None:
    """After a successful login: the pair starts afresh (the client knows the
    password) and the attempt no longer counts towards the ceilings.

    One row per statement, in the slot's order: a statement that held one counter
    while waiting for another, in a different order than ``_TAKE_SLOT``, could
    deadlock with a concurrent attempt."""
    await pool.execute(
        "DELETE FROM identity.login_throttle WHERE scope = 'pair' AND key = $1",
        _pair_key(username, address))
    for scope, key in (("account", username), ("address", address)):
        await pool.execute(
            "UPDATE identity.login_throttle SET attempts = greatest(attempts - 1, 0)"
            " WHERE scope = $1 AND key = $2", scope, key)


async def login(
    pool: asyncpg.Pool, username: str, password: str, address: str, *,
    limits: LoginLimits | None = None, passwords: PasswordWorkers | None = None,
    ttl: timedelta = TOKEN_TTL,
) -> tuple[User, str]:
    """Check the password; return the user and a new opaque token (valid ``ttl``).

    Raises ``LoginThrottled`` when the attempt is over one of ``limits`` (counted
    and checked in one statement before the password, so neither a burst nor a
    throttled guesser learns anything), ``InvalidCredentials`` for an unknown user,
    a wrong password or an inactive account, all alike. Argon2 runs on
    ``passwords`` (a bounded pool; a private one-thread pool if not given).
    """
    limits = limits or LoginLimits()
    # Keys bounded in length (an index entry must fit in a page): no username is
    # longer than 64 characters, so a longer one fails below whatever its key.
    username_key, address = username[:64], address[:100]
    await _take_slot(pool, username_key, address, limits)
    row = await pool.fetchrow("SELECT * FROM identity.users WHERE username = $1", username)
    own = passwords is None
    workers = passwords or PasswordWorkers(1)
    try:
        ok = await workers.verify(row["password_hash"] if row else None, password)
    finally:
        if own:
            workers.close()
    if row is None or not ok or not row["active"]:
        raise InvalidCredentials("wrong username or password")
    await _release_slot(pool, username_key, address)
    token = secrets.token_urlsafe(32)
    # The token is only issued while the account is still active: a disable that
    # commits between the password check and here must not leave a live token.
    issued = await pool.fetchval(
        "WITH u AS (UPDATE identity.users SET last_login_at = now()"
        "           WHERE id = $2 AND active RETURNING id)"
        " INSERT INTO identity.tokens (token_hash, user_id, expires_at)"
        " SELECT $1, u.id, now() + $3::interval FROM u RETURNING user_id",
        hash_token(token), row["id"], ttl,
    )
    if issued is None:
        raise InvalidCredentials("wrong username or password")
    # Stale counters and expired tokens are pruned here rather than by a timer. SKIP
    # LOCKED: the prune never waits on a counter an attempt holds (it would take
    # several in no fixed order, and could deadlock with that attempt).
    await pool.execute(
        "DELETE FROM identity.login_throttle WHERE (scope, key) IN ("
        " SELECT scope, key FROM identity.login_throttle"
        " WHERE window_start < now() - interval '1 day'"
        " FOR UPDATE SKIP LOCKED LIMIT 1000)"
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


AGENCY_ROLES = ("staff", "head")


async def agency_members(conn: asyncpg.Pool | asyncpg.Connection, agency: str,
                         username: str | None = None) -> list[str]:
    """The usernames of the active staff and heads of ``agency`` (only ``username``
    if given: empty when that person is not an active member), in username order.
    Who may be assigned a ticket of the agency."""
    rows = await conn.fetch(
        "SELECT username FROM identity.users WHERE agency = $1 AND active"
        " AND role = ANY($2::text[]) AND ($3::text IS NULL OR username = $3)"
        " ORDER BY username", agency, list(AGENCY_ROLES), username)
    return [r["username"] for r in rows]


# --- account management (awasi users ..., the router's admin pages) ---------------

@dataclass(frozen=True, slots=True)
class Account:
    """A user as the account lists show it: never the hash."""

    user: User
    created_at: datetime
    last_login_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {**self.user.to_json(), "active": self.user.active,
                "created_at": self.created_at.isoformat(),
                "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None}


_ACCOUNT_COLUMNS = ("id, username, display_name, role, agency, region, active,"
                    " created_at, last_login_at")


def _account(row: asyncpg.Record) -> Account:
    return Account(User.from_row(row), row["created_at"], row["last_login_at"])


async def list_accounts(pool: asyncpg.Pool | asyncpg.Connection, *, after: str | None = None,
                        limit: int | None = None) -> list[Account]:
    """Accounts ordered by username; ``after`` a username for keyset paging."""
    rows = await pool.fetch(
        f"SELECT {_ACCOUNT_COLUMNS} FROM identity.users"
        " WHERE $1::text IS NULL OR username > $1 ORDER BY username LIMIT $2",
        after, limit)
    return [_account(r) for r in rows]


async def get_account(pool: asyncpg.Pool | asyncpg.Connection, username: str) -> Account:
    """The account; raises ``UnknownUser``."""
    row = await pool.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM identity.users WHERE username = $1", username)
    if row is None:
        raise UnknownUser(username)
    return _account(row)


async def record_audit(conn: asyncpg.Pool | asyncpg.Connection, *, actor: str, action: str,
                       target: str, details: dict[str, Any] | None = None) -> None:
    """Append one row to the account audit log (never a password or hash)."""
    await conn.execute(
        "INSERT INTO identity.account_audit (actor, action, target, details)"
        " VALUES ($1, $2, $3, $4::jsonb)",
        actor, action, target, json.dumps(details or {}))


async def account_audit(pool: asyncpg.Pool | asyncpg.Connection, *, before: int | None = None,
                        limit: int = 50) -> list[dict[str, Any]]:
    """The audit log, newest first; ``before`` an id for keyset paging."""
    rows = await pool.fetch(
        "SELECT id, at, actor, action, target, details FROM identity.account_audit"
        " WHERE $1::bigint IS NULL OR id < $1 ORDER BY id DESC LIMIT $2", before, limit)
    return [{"id": r["id"], "at": r["at"].isoformat(), "actor": r["actor"],
             "action": r["action"], "target": r["target"],
             "details": json.loads(r["details"])} for r in rows]


async def set_active(pool: asyncpg.Pool, username: str, active: bool, *, actor: str) -> None:
    """Enable or disable an account. Disabling deletes its tokens in the same
    transaction, so every session and API token it holds ends at once (and
    ``authenticate`` checks ``active`` besides). Raises ``UnknownUser``."""
    async with pool.acquire() as conn, conn.transaction():
        uid = await conn.fetchval(
            "UPDATE identity.users SET active = $2 WHERE username = $1 RETURNING id",
            username, active)
        if uid is None:
            raise UnknownUser(username)
        if not active:
            await conn.execute("DELETE FROM identity.tokens WHERE user_id = $1", uid)
        await record_audit(conn, actor=actor, action="enable" if active else "disable",
                           target=username)


async def set_password(pool: asyncpg.Pool, username: str, password: str, *, actor: str,
                       action: str = "password_set", keep_token: str | None = None) -> None:
    """Replace the password (the caller has checked its strength) and end the
    account's sessions and tokens, all but ``keep_token`` (the caller's own, when a
    person changes their own password). Raises ``UnknownUser``."""
    hashed = await hash_password(password)
    keep = hash_token(keep_token) if keep_token else None
    async with pool.acquire() as conn, conn.transaction():
        uid = await conn.fetchval(
            "UPDATE identity.users SET password_hash = $2 WHERE username = $1 RETURNING id",
            username, hashed)
        if uid is None:
            raise UnknownUser(username)
        await conn.execute(
            "DELETE FROM identity.tokens WHERE user_id = $1"
            " AND ($2::bytea IS NULL OR token_hash <> $2)", uid, keep)
        await record_audit(conn, actor=actor, action=action, target=username)


async def update_account(pool: asyncpg.Pool, username: str, *, role: str, agency: str | None,
                         region: str | None, actor: str) -> Account:
    """Change role, agency and region (catalog codes checked by the caller). A role
    change ends the account's sessions: a token keeps no stale privileges. Raises
    ``UnknownUser``, ``InvalidUser``."""
    if role not in ROLES:
        raise InvalidUser(f"role must be one of {', '.join(ROLES)}")
    if role in ("staff", "head") and not agency:
        raise InvalidUser(f"a {role} needs an agency")
    if role not in ("staff", "head"):
        agency = None
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchrow(
            "SELECT id, role, agency, region FROM identity.users WHERE username = $1"
            " FOR UPDATE", username)
        if before is None:
            raise UnknownUser(username)
        await conn.execute(
            "UPDATE identity.users SET role = $2, agency = $3, region = $4 WHERE id = $1",
            before["id"], role, agency, region)
        changes = {k: [before[k], v] for k, v in
                   (("role", role), ("agency", agency), ("region", region)) if before[k] != v}
        if changes:
            if "role" in changes or "agency" in changes:
                await conn.execute("DELETE FROM identity.tokens WHERE user_id = $1",
                                   before["id"])
            await record_audit(conn, actor=actor, action="account_changed", target=username,
                               details=changes)
        return await get_account(conn, username)


async def verify_current_password(pool: asyncpg.Pool, user: User, password: str,
                                  address: str, *, limits: LoginLimits,
                                  passwords: PasswordWorkers) -> None:
    """Check a logged-in user's current password (before they change it), counted
    by the same throttle as logins: a stolen session cannot guess it fast. Raises
    ``LoginThrottled`` or ``InvalidCredentials``."""
    username_key, address = user.username[:64], address[:100]
    await _take_slot(pool, username_key, address, limits)
    hashed = await pool.fetchval(
        "SELECT password_hash FROM identity.users WHERE id = $1 AND active", user.id)
    if not await passwords.verify(hashed, password):
        raise InvalidCredentials("wrong password")
    await _release_slot(pool, username_key, address)
