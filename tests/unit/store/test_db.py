"""Migrations and the schema-at-head guard, on SQLite and (where it runs) PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from keyless.errors import ConfigurationError
from keyless.store import db


async def test_fresh_database_is_refused_then_migrated(url: str) -> None:
    engine = db.create_engine(url)
    try:
        with pytest.raises(ConfigurationError, match="keyless init"):
            await db.require_head(engine)
        await db.migrate(engine)
        await db.require_head(engine)
        assert await db.current_revision(engine) == db.head_revision()
        await db.migrate(engine)  # idempotent
    finally:
        await engine.dispose()


async def test_unknown_revision_is_refused(url: str) -> None:
    engine = db.create_engine(url)
    try:
        await db.migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
        with pytest.raises(ConfigurationError, match="ffff"):
            await db.require_head(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("given", "driver"),
    [("postgresql://u@h/d", "postgresql+asyncpg"), ("postgres://u@h/d", "postgresql+asyncpg"),
     ("sqlite:///x.db", "sqlite+aiosqlite")],
)
def test_url_normalisation(given: str, driver: str) -> None:
    assert db.normalise_url(given).startswith(driver + "://")


def test_unsupported_url() -> None:
    with pytest.raises(ConfigurationError, match="unsupported"):
        db.normalise_url("mysql://u@h/d")
