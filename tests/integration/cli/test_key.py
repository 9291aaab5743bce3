"""`keyless key list|rotate|retire`: signing keys as seen through the management API and the JWKS."""

from __future__ import annotations

import time

import pytest

from tests.integration.cli.helpers import epoch, one_error_line
from tests.support.server import RunningServer


def jwks_kids(srv: RunningServer) -> set[str]:
    with srv.http() as http:
        resp = http.get(f"{srv.url}/{srv.tenant_id}/discovery/v2.0/keys")
    assert resp.status_code == 200, resp.text
    return {k["kid"] for k in resp.json()["keys"]}


def test_rotate_publishes_a_next_key_and_retire_removes_it(server: RunningServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    keys = server.cli_json("key", "list")
    active = [k for k in keys if k["status"] == "active"]
    assert len(active) == 1
    table = server.cli("key", "list").stdout
    assert active[0]["kid"] in table and "active" in table

    before = time.time()
    new = server.cli_json("key", "rotate", "--activate-in", "10m", "--alg", "ES256")
    assert new["status"] == "next" and new["alg"] == "ES256"
    assert before + 600 - 5 <= epoch(new["activates_at"]) <= time.time() + 600 + 5
    assert new["kid"] in jwks_kids(server)  # published before it signs

    refused = server.cli("key", "retire", new["kid"], check=False, input="")
    assert refused.returncode == 1
    assert "--yes" in one_error_line(refused.stderr)

    server.cli("key", "retire", new["kid"], "--yes")
    assert new["kid"] not in jwks_kids(server)
    statuses = {k["kid"]: k["status"] for k in server.cli_json("key", "list")}
    assert statuses[new["kid"]] == "retired"
    assert statuses[active[0]["kid"]] in {"active", "previous"}
    assert [kid for kid, st in statuses.items() if st == "active"] == [active[0]["kid"]]


def test_bad_input_is_one_error_line(sqlite_server: RunningServer) -> None:
    bad_delay = sqlite_server.cli("key", "rotate", "--activate-in", "soon", check=False)
    assert bad_delay.returncode == 2  # a malformed value is a usage mistake (docs/cli.md)
    assert "--activate-in" in one_error_line(bad_delay.stderr)
    too_late = sqlite_server.cli("key", "rotate", "--activate-in", "8d", check=False)
    assert too_late.returncode == 2
    assert "--activate-in" in one_error_line(too_late.stderr)
    unknown = sqlite_server.cli("key", "retire", "no-such-kid", "--yes", check=False)
    assert unknown.returncode == 1
    assert "key_not_found" in one_error_line(unknown.stderr)
