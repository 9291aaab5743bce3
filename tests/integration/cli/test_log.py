"""`keyless log signins|audit`: token requests and directory changes, with filters."""

from __future__ import annotations

import time
import uuid

import pytest

from keyless.cli.common import when
from tests.integration.cli.helpers import epoch, one_error_line
from tests.support.server import Admin, RunningServer


def test_signins_show_success_and_failure(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    uri = f"api://log-{uuid.uuid4().hex[:6]}"
    with Admin(server) as admin:
        client, secret = admin.client_with_role(uri)
    cid = client["client_id"]
    server.cli("token", "get", cid, "--secret", secret, "--scope", f"{uri}/.default")
    bad = server.cli("token", "get", cid, "--secret", "kls_wrong", "--scope", f"{uri}/.default", check=False)
    assert bad.returncode == 1

    rows = server.cli_json("log", "signins", "--client", cid, "--since", "1h")
    assert [r["result"] for r in rows] == ["failure", "success"]  # newest first
    failure, success = rows
    assert failure["error"] == "invalid_client" and failure["detail"] == "wrong_secret"
    assert success["resource"] == uri and success["credential_type"] == "secret"
    assert "kls_wrong" not in str(rows)

    table = server.cli("log", "signins", "--client", cid).stdout
    assert "success" in table and "failure" in table and "invalid_client" in table
    assert when(epoch(success["time"])) in table  # readable UTC times, not epoch seconds

    only_failures = server.cli_json("log", "signins", "--client", cid, "--result", "failure")
    assert [r["result"] for r in only_failures] == ["failure"]
    assert len(server.cli_json("log", "signins", "--client", cid, "--limit", "1")) == 1


def test_audit_filters_by_action_and_client(sqlite_server: RunningServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    name = f"aud-{uuid.uuid4().hex[:6]}"
    created = sqlite_server.cli_json("app", "create", name)
    cid = created["client_id"]
    start = time.time()
    added = sqlite_server.cli_json("secret", "add", cid)
    events = sqlite_server.cli_json("log", "audit", "--client", cid, "--action", "secret.add", "--since", "10m")
    assert len(events) == 1
    event = events[0]
    assert event["target_id"] == cid and event["details"]["secret_id"] == added["id"]
    assert epoch(event["time"]) >= int(start) - 1
    assert added["secret"] not in str(events)
    everything = sqlite_server.cli_json("log", "audit", "--client", cid)
    assert {e["action"] for e in everything} == {"application.create", "secret.add"}
    table = sqlite_server.cli("log", "audit", "--client", cid).stdout
    assert "secret.add" in table and "application.create" in table


def test_bad_filters_are_one_error_line(sqlite_server: RunningServer) -> None:
    since = sqlite_server.cli("log", "signins", "--since", "yesterday", check=False)
    assert since.returncode == 2  # a malformed value is a usage mistake (docs/cli.md)
    assert "--since" in one_error_line(since.stderr)
    audit_since = sqlite_server.cli("log", "audit", "--since", "1w", check=False)
    assert audit_since.returncode == 2
    assert "--since" in one_error_line(audit_since.stderr)
