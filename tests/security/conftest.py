"""Fixtures for the catalog tests (tests/security): one directory setup per real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.support import SecWorld, sec_world
from tests.support.server import RunningServer


@pytest.fixture(scope="session")
def world(server: RunningServer) -> Iterator[SecWorld]:
    """A resource, a granted client and an ungranted one on the shared server (each backend)."""
    with sec_world(server) as w:
        yield w
