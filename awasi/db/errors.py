"""Driver errors translated at the boundary into our own small hierarchy.

Only ``TransientDatabaseError`` is worth retrying (lost connection, serialization
failure, deadlock, server shutting down); everything else is a bug or bad data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg


class DatabaseError(Exception):
    """A database operation failed."""

    transient = False


class TransientDatabaseError(DatabaseError):
    """A database operation failed in a way that may succeed if tried again."""

    transient = True


_TRANSIENT_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
    "53300",  # too_many_connections
}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseError):
        return exc.transient
    if isinstance(
        exc,
        asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.InterfaceError
        | ConnectionError
        | OSError
        | TimeoutError,
    ):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate in _TRANSIENT_SQLSTATES


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise driver errors as ``DatabaseError`` / ``TransientDatabaseError``."""
    try:
        yield
    except DatabaseError:
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
        if is_transient(e):
            raise TransientDatabaseError(str(e)) from e
        raise DatabaseError(str(e)) from e
