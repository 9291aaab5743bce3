"""The agent logs JSON lines (keyless.jsonlog), like the server, and keeps its per-poll requests to the
server out of the log unless asked (`--log-level debug`): an agent polls every few seconds for ever."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.support.agent import RunningAgent, host_with_resource, start_agent, stop_agent
from tests.support.server import RunningServer


def _json_lines(agent: RunningAgent) -> list[dict[str, object]]:
    return [json.loads(line) for line in agent.logs().splitlines() if line.startswith("{")]


def test_agent_logs_are_json_and_polls_show_at_debug_only(sqlite_server: RunningServer, tmp_path: Path) -> None:
    quiet_host, _ = host_with_resource(sqlite_server)
    chatty_host, _ = host_with_resource(sqlite_server)
    (tmp_path / "quiet").mkdir()
    (tmp_path / "chatty").mkdir()
    quiet = start_agent(sqlite_server, tmp_path / "quiet", join_token=quiet_host["join_token"], host=quiet_host)
    chatty = start_agent(sqlite_server, tmp_path / "chatty", join_token=chatty_host["join_token"],
                         host=chatty_host, extra=("--log-level", "debug"))
    try:
        time.sleep(2.5)  # --poll 1: a few polls each
    finally:
        stop_agent(quiet)
        stop_agent(chatty)
    lines = _json_lines(quiet)
    assert lines and all(line.startswith("{") for line in quiet.logs().splitlines() if line.strip())
    assert any(x.get("event") == "agent_ready" for x in lines)
    assert not any(str(x.get("logger", "")).startswith("httpx") for x in lines)
    polls = [x for x in _json_lines(chatty) if str(x.get("logger", "")).startswith("httpx")]
    assert len(polls) >= 2
    assert chatty_host["join_token"] not in chatty.logs()
