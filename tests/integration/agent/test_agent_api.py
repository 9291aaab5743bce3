"""The server's agent API (`/{tenant}/agent/v1/…`): refusals, with exact bodies, and the failure
limit on guessing join tokens and host credentials."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from keyless.agent.credential import load
from keyless.agent.state import StateDir
from tests.support.agent import RunningAgent, host_with_resource
from tests.support.server import Admin, RunningServer

REFUSED_JOIN = {"error": "invalid_grant", "error_description": "the join token is invalid, expired or already used"}
REFUSED_AUTH = {"error": "invalid_client", "error_description": "client authentication failed"}


def _post(server: RunningServer, path: str, **kwargs: object) -> httpx.Response:
    with server.http() as http:
        return http.post(f"{server.url}/{server.tenant_id}/agent/v1/{path}", **kwargs)  # type: ignore[arg-type]


def test_enroll_refusals_look_alike(sqlite_server: RunningServer) -> None:
    host, _ = host_with_resource(sqlite_server)
    token = host["join_token"]
    tenant, host_id = token.split(".")[1:3]
    for wrong in (f"kjt.{tenant}.{host_id}.{'A' * 43}", f"kjt.{tenant}.{uuid.uuid4()}.{'A' * 43}",
                  f"kjt.{uuid.uuid4()}.{host_id}.{token.split('.')[3]}", "not-a-token"):
        resp = _post(sqlite_server, "enroll", json={"join_token": wrong, "csr": "x"})
        assert (resp.status_code, resp.json()) == (400, REFUSED_JOIN), wrong
        assert resp.headers["cache-control"] == "no-store"
    bad_csr = _post(sqlite_server, "enroll", json={"join_token": token, "csr": "not a csr"})
    assert bad_csr.status_code == 400 and bad_csr.json()["error"] == "invalid_request"
    assert sqlite_server.cli_json("host", "show", host["id"])["status"] == "pending"  # the token is not spent


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"content": b"{}", "headers": {"content-type": "text/plain"}}, 400),
    ({"content": b"[1]", "headers": {"content-type": "application/json"}}, 400),
    ({"content": b"{", "headers": {"content-type": "application/json"}}, 400),
    ({"json": {"join_token": "x" * 70_000}}, 413),
])
def test_enroll_malformed_bodies(sqlite_server: RunningServer, kwargs: dict[str, object], status: int) -> None:
    resp = _post(sqlite_server, "enroll", **kwargs)
    assert resp.status_code == status and resp.json()["error"] == "invalid_request"


def test_agent_calls_need_a_host_assertion(enrolled: tuple[RunningAgent, str], sqlite_server: RunningServer) -> None:
    agent, _ = enrolled
    assert _post(sqlite_server, "host", json={}).json() == REFUSED_AUTH
    assert _post(sqlite_server, "host", json={"client_assertion": "a.b.c"}).json() == REFUSED_AUTH
    cred = load(StateDir(agent.state_dir))
    ok = _post(sqlite_server, "host", json={"client_assertion": cred.assertion(cred.host.system_client_id)})
    assert ok.status_code == 200 and ok.json()["host_id"] == agent.host["id"]
    assertion = cred.assertion(cred.host.system_client_id)
    assert _post(sqlite_server, "host", json={"client_assertion": assertion}).status_code == 200
    replayed = _post(sqlite_server, "host", json={"client_assertion": assertion})
    assert (replayed.status_code, replayed.json()) == (401, REFUSED_AUTH)


def test_a_user_assigned_identity_does_not_speak_for_the_host(enrolled: tuple[RunningAgent, str],
                                                              sqlite_server: RunningServer) -> None:
    agent, _ = enrolled
    with Admin(sqlite_server) as admin:
        user = admin.api.call("POST", "/identities", json_body={"name": f"u-{uuid.uuid4().hex[:6]}"})
        admin.api.call("PUT", f"/identities/{user['client_id']}/hosts/{agent.host['id']}")
    cred = load(StateDir(agent.state_dir))
    resp = _post(sqlite_server, "renew", json={"client_assertion": cred.assertion(user["client_id"]), "csr": "x"})
    assert (resp.status_code, resp.json()) == (401, REFUSED_AUTH)


def test_guessing_join_tokens_is_throttled(fresh_server: RunningServer, tmp_path: Path) -> None:
    """Production limits (30 failures per source, K01): the next attempt gets 429, even a right one."""
    host, _ = host_with_resource(fresh_server)
    tenant, host_id = host["join_token"].split(".")[1:3]
    statuses = [_post(fresh_server, "enroll", json={"join_token": f"kjt.{tenant}.{host_id}.{'B' * 43}",
                                                    "csr": "x"}).status_code for _ in range(31)]
    assert statuses[:30] == [400] * 30 and statuses[30] == 429
    right = _post(fresh_server, "enroll", json={"join_token": host["join_token"], "csr": "x"})
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
