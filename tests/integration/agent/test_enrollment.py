"""Enrollment with a join token, the host key on disk, tokens for the system-assigned identity."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx

from tests.integration.agent.conftest import claims_of
from tests.support.agent import RunningAgent, host_with_resource, start_agent, stop_agent
from tests.support.server import RunningServer


def test_imds_token_for_the_system_identity(enrolled: tuple[RunningAgent, str], sqlite_server: RunningServer) -> None:
    agent, uri = enrolled
    resp = agent.get(uri)
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["resource"] == uri and body["token_type"] == "Bearer"
    assert int(body["expires_in"]) > 3000 and body["expires_on"].isdigit()
    identity = agent.host["system_identity"]
    assert body["client_id"] == identity["client_id"]
    claims = claims_of(body["access_token"])
    assert claims["aud"] == uri
    assert claims["xms_mirid"] == identity["resource_id"]
    assert claims["azpacr"] == "2"
    assert claims["oid"] == identity["object_id"] and claims["appid"] == identity["client_id"]
    assert claims["roles"] == ["Orders.Read"]
    assert claims["iss"] == sqlite_server.issuer
    again = agent.get(uri).json()
    assert again["access_token"] == body["access_token"]  # served from the cache


def test_state_dir_and_key_are_private(enrolled: tuple[RunningAgent, str]) -> None:
    agent, _ = enrolled
    assert stat.S_IMODE(agent.state_dir.stat().st_mode) == 0o700
    credential = agent.state_dir / "host.pem"
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600
    text = credential.read_text()
    assert "PRIVATE KEY" in text and "CERTIFICATE" in text


def test_join_token_is_single_use(enrolled: tuple[RunningAgent, str], sqlite_server: RunningServer) -> None:
    agent, _ = enrolled
    with sqlite_server.http() as http:
        resp = http.post(f"{sqlite_server.url}/{sqlite_server.tenant_id}/agent/v1/enroll",
                         json={"join_token": agent.host["join_token"], "csr": "x"})
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant",
                           "error_description": "the join token is invalid, expired or already used"}


def test_status_reports_the_host(enrolled: tuple[RunningAgent, str]) -> None:
    agent, _ = enrolled
    status = agent.status()
    assert status["state"] == "ok"
    assert status["host_id"] == agent.host["id"]
    assert [i["kind"] for i in status["identities"]] == ["system"]
    assert status["certificate_renew_at"] < status["certificate_not_after"]


def test_unknown_resource_is_an_error_and_not_cached(enrolled: tuple[RunningAgent, str]) -> None:
    agent, _ = enrolled
    resp = agent.get("api://nothing-here")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_resource"
    assert httpx.get(agent.imds, params={"api-version": "2018-02-01", "resource": "api://nothing-here"},
                     headers={"Metadata": "true"}).status_code == 400


def test_agent_status_command(enrolled: tuple[RunningAgent, str], sqlite_server: RunningServer) -> None:
    agent, _ = enrolled
    by_tcp = sqlite_server.cli_json("agent", "status", "--listen", f"127.0.0.1:{agent.port}")
    assert by_tcp["state"] == "ok" and by_tcp["host_id"] == agent.host["id"]
    by_socket = sqlite_server.cli_json("agent", "status", "--socket", str(agent.socket))
    assert by_socket["host_id"] == agent.host["id"]
    table = sqlite_server.cli("agent", "status", "--listen", f"127.0.0.1:{agent.port}").stdout
    assert agent.host["name"] in table
    nobody = sqlite_server.cli("agent", "status", "--listen", "127.0.0.1:1", check=False)
    assert nobody.returncode == 1 and nobody.stderr.startswith("error: no agent answers at 127.0.0.1:1")


def test_enrollment_and_tokens_on_each_backend(server: RunningServer, tmp_path: Path) -> None:
    host, uri = host_with_resource(server)
    agent = start_agent(server, tmp_path, join_token=host["join_token"], host=host)
    try:
        resp = agent.get(uri)
        assert resp.status_code == 200, resp.text
        assert claims_of(resp.json()["access_token"])["xms_mirid"] == host["system_identity"]["resource_id"]
        assert server.cli_json("host", "show", host["id"])["status"] == "enrolled"
    finally:
        stop_agent(agent)


def test_metrics(enrolled: tuple[RunningAgent, str]) -> None:
    agent, uri = enrolled
    assert agent.get(uri).status_code == 200
    assert agent.get("api://unknown-to-metrics").status_code == 400
    resp = httpx.get(f"{agent.url}/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = resp.text
    assert 'keyless_agent_requests_total{endpoint="imds",status="200"}' in text
    assert 'keyless_agent_requests_total{endpoint="imds",status="400"}' in text
    assert 'keyless_agent_state{state="ok"} 1' in text
    assert "keyless_agent_certificate_not_after_seconds 1" in text
    assert agent.host["system_identity"]["client_id"] not in text and "eyJ" not in text
    assert httpx.get(f"{agent.url}/metrics", headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 400
