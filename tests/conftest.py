"""Shared fixtures: a real Keyless server per storage backend (SQLite always; PostgreSQL where it
runs, and in CI it must)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Admin, RunningServer, postgres_database, require_postgres, start_server, stop_server

# Tests share one server per backend; lift the failure limiter so negative tests do not throttle
# each other (the limiter has tests of its own against a dedicated server).
SHARED_ENV = {"KEYLESS_SOURCE_FAILURE_BURST": "1000000", "KEYLESS_CLIENT_FAILURE_BURST": "1000000"}


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A running `keyless serve` over TLS on loopback, on each storage backend."""
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "postgresql":
        require_postgres()
        with postgres_database() as url:
            srv = start_server(tmp, database_url=url, env=SHARED_ENV)
            try:
                yield srv
            finally:
                stop_server(srv)
        return
    srv = start_server(tmp, env=SHARED_ENV)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One SQLite-backed server for tests that need not run on both backends."""
    srv = start_server(tmp_path_factory.mktemp("server-sqlite-only"), env=SHARED_ENV)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of its own, with the production failure limits, for tests that change global state."""
    srv = start_server(tmp_path)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture
def admin(server: RunningServer) -> Iterator[Admin]:
    """Directory setup through the real management API, on the `server` fixture's backend."""
    with Admin(server) as a:
        yield a
