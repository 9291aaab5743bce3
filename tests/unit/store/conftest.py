"""A fresh database URL on each engine: SQLite always, PostgreSQL where it runs (required in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keyless.store import db
from tests.support.server import postgres_database, require_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield db.sqlite_url(tmp_path / "s.db")
        return
    require_postgres()
    with postgres_database() as pg:
        yield pg
