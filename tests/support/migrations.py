"""Running Alembic to one revision inside a test's connection (the migration tests' one helper)."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from sqlalchemy import Connection

from keyless.store import db


def migrate_to(revision: str, *, down: bool = False) -> Callable[[Connection], None]:
    """For `conn.run_sync`: upgrade (or, with `down`, downgrade) the connection's database to `revision`."""
    def run(connection: Connection) -> None:
        cfg = db.alembic_config()
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)
    return run
