"""An enrolled agent per test module, against the shared SQLite server."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent import RunningAgent, host_with_resource, start_agent, stop_agent
from tests.support.server import RunningServer


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return value


@pytest.fixture(scope="module")
def enrolled(sqlite_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[RunningAgent, str]]:
    """(agent, resource URI its system identity may get tokens for)."""
    host, uri = host_with_resource(sqlite_server)
    agent = start_agent(sqlite_server, tmp_path_factory.mktemp("agent"), join_token=host["join_token"], host=host)
    try:
        yield agent, uri
    finally:
        stop_agent(agent)


@pytest.fixture
def agent_tmp(tmp_path: Path) -> Path:
    return tmp_path
