"""Shared fixtures: a real Keyless server per storage backend (SQLite always; PostgreSQL where it
runs, and in CI it must)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from keyless.crypto.ca import IssuedCert
from tests.support import issuer as support_issuer
from tests.support.server import Admin, RunningServer, postgres_database, require_postgres, start_server, stop_server

# Property tests assert behaviour, not speed: hypothesis's default 200 ms deadline per example turns a
# loaded CI machine into a "flaky" failure (seen once on test_property_retry_after_is_honest).
settings.register_profile("keyless", deadline=None)
settings.load_profile("keyless")

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


@pytest.fixture(scope="session")
def issuer_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[IssuedCert, Path]:
    """The CA of every external test issuer (federation): one per session, trusted by `fed_server`."""
    return support_issuer.issuer_ca(tmp_path_factory.mktemp("issuer-ca"))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def fed_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               issuer_ca: tuple[IssuedCert, Path]) -> Iterator[RunningServer]:
    """A Keyless server that trusts the test issuers' CA and may fetch from loopback issuers."""
    tmp = tmp_path_factory.mktemp(f"fed-server-{request.param}")
    env = {**SHARED_ENV, **support_issuer.federation_env(issuer_ca[1])}
    if request.param == "postgresql":
        require_postgres()
        with postgres_database() as url:
            srv = start_server(tmp, database_url=url, env=env)
            try:
                yield srv
            finally:
                stop_server(srv)
        return
    srv = start_server(tmp, env=env)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture
def issuer(tmp_path: Path, issuer_ca: tuple[IssuedCert, Path]) -> Iterator[support_issuer.ExternalIssuer]:
    """A fresh external issuer on loopback (its own URL, so no server-side cache is shared)."""
    with support_issuer.running_issuer(tmp_path / "issuer", issuer_ca[0]) as running:
        yield running
