"""`agent.silent` with a real agent (docs/notifications.md, "Scheduled scans"): nothing while the
agent polls, one webhook once it has been quiet for the configured minutes."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import SHARED_ENV
from tests.support.agent import start_agent, stop_agent
from tests.support.server import Admin, start_server, stop_server
from tests.support.webhooks import receiver


def test_a_stopped_agent_is_reported_silent_once(tmp_path: Path) -> None:
    with receiver(tmp_path / "r") as hooks:
        env = {**SHARED_ENV, **hooks.env(), "KEYLESS_NOTICE_SCAN_INTERVAL": "0.5",
               "KEYLESS_AGENT_SILENT_MINUTES": "0.08"}  # ~5 s; the agent polls every second
        srv = start_server(tmp_path / "s", env=env)
        try:
            with Admin(srv) as admin:
                admin.api.call("POST", "/webhooks", json_body={"url": hooks.url, "event_types": ["agent.silent"]})
                host = dict(admin.api.call("POST", "/hosts", json_body={"name": "web-quiet"}))
            (tmp_path / "a").mkdir()
            agent = start_agent(srv, tmp_path / "a", join_token=host["join_token"], host=host)
            try:
                time.sleep(8)  # longer than the silence threshold, while the agent keeps calling
                assert [r for r in hooks.received if r.json()["subject"] == host["id"]] == []
            finally:
                stop_agent(agent)
            deadline = time.monotonic() + 20
            while not [r for r in hooks.received if r.json()["subject"] == host["id"]]:
                assert time.monotonic() < deadline, "no agent.silent webhook"
                time.sleep(0.2)
            time.sleep(2)
            [silent] = [r.json() for r in hooks.received if r.json()["subject"] == host["id"]]
            assert (silent["type"], silent["data"]["host_name"]) == ("agent.silent", "web-quiet")
        finally:
            stop_server(srv)
