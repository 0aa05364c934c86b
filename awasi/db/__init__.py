"""The database layer: pool, error translation and per-schema migrations."""

from awasi.db.errors import DatabaseError, TransientDatabaseError, translate_errors
from awasi.db.migrate import Migration, load_migrations, migrate_schema
from awasi.db.pool import create_pool

__all__ = [
    "DatabaseError",
    "Migration",
    "TransientDatabaseError",
    "create_pool",
    "load_migrations",
    "migrate_schema",
    "translate_errors",
]
