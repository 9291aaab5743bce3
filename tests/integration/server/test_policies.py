"""Credential policies against a real server (docs/policies.md): enforce and audit mode at every write
(secrets, certificates, CA-issued certificates, federated credentials, agent enrollment) and at
sign-in for credentials that predate the rule; source networks with and without a trusted proxy;
the dry run; the CLI's one-line refusal."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyless.crypto.client_keys import certificate_signing_request, generate_client_key
from tests.conftest import SHARED_ENV
from tests.integration.server.conftest import client_for, secret_post, token_request
from tests.support.certs import AUTH_FAILED, manage, new_cert, signins
from tests.support.server import Admin, RunningServer, start_server, stop_server

ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Admin]]:
    server = start_server(Path(tmp_path_factory.mktemp("policies")), env=SHARED_ENV)
    try:
        with Admin(server) as admin:
            yield server, admin
    finally:
        stop_server(server)


def _app(admin: Admin, uri: str | None = None) -> str:
    return str(admin.app(f"pol-{uuid.uuid4().hex[:8]}", identifier_uri=uri)["client_id"])


def _override(server: RunningServer, admin: Admin, client_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    resp = manage(server, admin, "PUT", f"/applications/{client_id}/policy", json=doc)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _refused(resp: httpx.Response, code: str) -> None:
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert (body["code"], body["title"], body["type"]) == (code, "Refused by policy", f"urn:keyless:problem:{code}")


def _audits(server: RunningServer, admin: Admin, since: float) -> list[dict[str, Any]]:
    resp = manage(server, admin, "GET", "/logs/audit", params={"since": since, "limit": 1000})
    return [r for r in resp.json() if r["time"] >= since]


def _client(admin: Admin) -> tuple[str, str, str]:
    """A client with a secret (made before any policy) granted a role on a fresh resource."""
    uri = f"api://pol-{uuid.uuid4().hex[:8]}"
    client, secret = admin.client_with_role(uri)
    return str(client["client_id"]), secret, f"{uri}/.default"


def _last(server: RunningServer, admin: Admin, client_id: str) -> dict[str, Any]:
    return signins(server, admin, client_id, limit=1)[0]


def test_enforced_block_secrets_refuses_the_write_and_changes_nothing(world: tuple[RunningServer, Admin]) -> None:
    server, admin = world
    cid = _app(admin)
    _override(server, admin, cid, {"block_secrets": {"mode": "enforce"}})
    since = time.time()
    _refused(manage(server, admin, "POST", f"/applications/{cid}/secrets", json={}), "policy_secret_blocked")
    assert manage(server, admin, "GET", f"/applications/{cid}/secrets").json() == []
    assert _audits(server, admin, since) == []
    # The allow-list lets a named application keep getting secrets.
    _override(server, admin, cid, {"block_secrets": {"mode": "enforce", "allowed_apps": [cid]}})
    assert manage(server, admin, "POST", f"/applications/{cid}/secrets", json={}).status_code == 201


def test_audit_mode_allows_the_write_and_records_the_violation(world: tuple[RunningServer, Admin]) -> None:
    server, admin = world
    cid = _app(admin)
    _override(server, admin, cid, {"block_secrets": {"mode": "audit"},
                                   "max_lifetime": {"mode": "audit", "secret": 86400}})
    since = time.time()
    made = manage(server, admin, "POST", f"/applications/{cid}/secrets", json={"expires_in": 7 * 86400})
    assert made.status_code == 201, made.text
    [record] = [r for r in _audits(server, admin, since) if r["action"] == "secret.add"]
    assert record["details"]["policy_violations"] == ["policy_secret_blocked", "policy_lifetime_exceeded"]


def test_certificate_rules_at_upload_and_at_ca_issue(world: tuple[RunningServer, Admin]) -> None:
    server, admin = world
    cid = _app(admin)
    _override(server, admin, cid, {"key_types": {"mode": "enforce", "allowed": [{"type": "RSA", "min_size": 3072},
                                                                                  {"type": "EC", "min_size": 256}]}})
    upload = manage(server, admin, "POST", f"/applications/{cid}/certificates",
                    json={"certificate": new_cert("rsa2048").cert_pem.decode()})
    _refused(upload, "policy_key_type")
    ok = manage(server, admin, "POST", f"/applications/{cid}/certificates",
                json={"certificate": new_cert("p256").cert_pem.decode()})
    assert ok.status_code == 201, ok.text

    _override(server, admin, cid, {"internal_ca": {"mode": "enforce"},
                                   "max_lifetime": {"mode": "enforce", "certificate": 30 * 86400}})
    _refused(manage(server, admin, "POST", f"/applications/{cid}/certificates",
                    json={"certificate": new_cert("p256", days=10).cert_pem.decode()}), "policy_not_internal_ca")
    csr = certificate_signing_request(generate_client_key("p256"), "pol").decode()
    _refused(manage(server, admin, "POST", "/ca/sign", json={"client_id": cid, "csr": csr, "days": 60}),
             "policy_lifetime_exceeded")
    issued = manage(server, admin, "POST", "/ca/sign", json={"client_id": cid, "csr": csr, "days": 20})
    assert issued.status_code == 201, issued.text


def test_federation_issuer_allow_list_and_lifetime_at_write(world: tuple[RunningServer, Admin]) -> None:
    server, admin = world
    cid = _app(admin)
    _override(server, admin, cid, {"federation": {"mode": "enforce", "issuers": [ISSUER],
                                                  "max_token_lifetime": 600}})
    body = {"name": "ci", "issuer": "https://gitlab.example.com",
            "subject": "project_path:g/p:ref_type:branch:ref:main"}
    path = f"/applications/{cid}/federated-credentials"
    _refused(manage(server, admin, "POST", path, json=body), "policy_issuer_not_allowed")
    _refused(manage(server, admin, "POST", path, json={**body, "issuer": ISSUER}), "policy_federated_lifetime")
    made = manage(server, admin, "POST", path, json={**body, "issuer": ISSUER, "max_token_lifetime": 600})
    assert made.status_code == 201, made.text


def test_o05_enforce_refuses_a_secret_made_before_the_rule_at_sign_in(world: tuple[RunningServer, Admin]) -> None:
    server, admin = world
    cid, secret, scope = _client(admin)
    with client_for(server) as http:
        assert token_request(http, server, secret_post(cid, secret, scope)).status_code == 200
        _override(server, admin, cid, {"max_lifetime": {"mode": "enforce", "secret": 86400}})
        resp = token_request(http, server, secret_post(cid, secret, scope))
        assert (resp.status_code, resp.json()) == (401, AUTH_FAILED)
        event = _last(server, admin, cid)
        assert (event["result"], event["error"], event["detail"]) == ("failure", "invalid_client",
                                                                      "policy_lifetime_exceeded")
        # Audit mode: the sign-in succeeds and the log says what it broke.
        _override(server, admin, cid, {"max_lifetime": {"mode": "audit", "secret": 86400}})
        assert token_request(http, server, secret_post(cid, secret, scope)).status_code == 200
        event = _last(server, admin, cid)
        assert (event["result"], event["detail"]) == ("success", "policy_audit:policy_lifetime_exceeded")


def test_source_networks_without_a_trusted_proxy_ignore_forwarding_headers(
        world: tuple[RunningServer, Admin]) -> None:
    server, admin = world
    cid, secret, scope = _client(admin)
    _override(server, admin, cid, {"source_networks": {"mode": "enforce", "networks": ["10.20.0.0/16"]}})
    with client_for(server) as http:
        for headers in ({}, {"X-Forwarded-For": "10.20.1.1"}, {"Forwarded": "for=10.20.1.1"}):
            resp = token_request(http, server, secret_post(cid, secret, scope), headers=headers)
            assert (resp.status_code, resp.json()) == (401, AUTH_FAILED), headers
            event = _last(server, admin, cid)
            assert (event["detail"], event["source"]) == ("policy_source_network", "127.0.0.1")
        _override(server, admin, cid, {"source_networks": {"mode": "enforce",
                                                           "networks": ["10.20.0.0/16", "127.0.0.0/8", "::1/128"]}})
        assert token_request(http, server, secret_post(cid, secret, scope)).status_code == 200


def test_source_networks_behind_a_trusted_proxy(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={**SHARED_ENV, "KEYLESS_TRUSTED_PROXIES": json.dumps(["127.0.0.1"])})
    try:
        with Admin(server) as admin, client_for(server) as http:
            cid, secret, scope = _client(admin)
            _override(server, admin, cid, {"source_networks": {"mode": "enforce", "networks": ["10.20.0.0/16"]}})
            ok = token_request(http, server, secret_post(cid, secret, scope), headers={"X-Forwarded-For": "10.20.1.1"})
            assert ok.status_code == 200, ok.text
            assert _last(server, admin, cid)["source"] == "10.20.1.1"
            # RFC 7239 too; the rightmost entry is the one the trusted proxy wrote.
            ok = token_request(http, server, secret_post(cid, secret, scope),
                               headers={"Forwarded": 'for="10.99.0.1", for=10.20.7.7'})
            assert ok.status_code == 200, ok.text
            spoofed = token_request(http, server, secret_post(cid, secret, scope),
                                    headers={"X-Forwarded-For": "10.20.1.1, 192.0.2.9"})
            assert (spoofed.status_code, spoofed.json()) == (401, AUTH_FAILED)
            event = _last(server, admin, cid)
            assert (event["detail"], event["source"]) == ("policy_source_network", "192.0.2.9")
    finally:
        stop_server(server)


def test_tenant_rule_applies_to_agent_enrollment_and_dry_run_lists_refusals(
        world: tuple[RunningServer, Admin]) -> None:
    server, admin = world
    cli_id = str(admin.api.target.client_id)  # the CLI's own application
    # The CLI's own application keeps its credential whatever the tenant rule says.
    _override(server, admin, str(cli_id), {"key_types": {"mode": "off"}, "max_lifetime": {"mode": "off"}})
    cid, secret, scope = _client(admin)
    with client_for(server) as http:
        assert token_request(http, server, secret_post(cid, secret, scope)).status_code == 200
    candidate = {"max_lifetime": {"mode": "enforce", "secret": 86400},
                 "key_types": {"mode": "enforce", "allowed": [{"type": "EC", "min_size": 256}]}}
    report = manage(server, admin, "POST", "/policy/test", json={"policy": candidate, "days": 1})
    assert report.status_code == 200, report.text
    found = report.json()
    mine = [f for f in found["credentials"] if f["owner"] == cid]
    assert [(f["reason"], f["refused"]) for f in mine] == [("policy_lifetime_exceeded", True)]
    assert not [f for f in found["credentials"] if f["owner"] == cli_id]  # exempted by its override
    signed = [f for f in found["signins"] if f["owner"] == cid]
    assert signed and all(f["reason"] == "policy_lifetime_exceeded" and f["source"] for f in signed)
    assert found["refused_credentials"] >= 1 and found["refused_signins"] >= 1
    assert manage(server, admin, "GET", "/policy").json() == {"policy": {}}  # a dry run changes nothing

    host = admin.api.call("POST", "/hosts", json_body={"name": f"pol-{uuid.uuid4().hex[:6]}"})
    try:
        assert manage(server, admin, "PUT", "/policy", json={"key_types": candidate["key_types"]}).status_code == 200
        csr = certificate_signing_request(generate_client_key("rsa2048"), "host").decode()
        with client_for(server) as http:
            resp = http.post(f"{server.url}/{server.tenant_id}/agent/v1/enroll",
                             json={"join_token": host["join_token"], "csr": csr})
            assert resp.status_code == 400, resp.text
            assert resp.json()["error"] == "invalid_request"
            # The join token was not spent: a key the policy allows enrolls with it.
            csr = certificate_signing_request(generate_client_key("p256"), "host").decode()
            resp = http.post(f"{server.url}/{server.tenant_id}/agent/v1/enroll",
                             json={"join_token": host["join_token"], "csr": csr})
            assert resp.status_code == 200, resp.text
    finally:
        assert manage(server, admin, "PUT", "/policy", json={}).status_code == 200


def test_cli_policy_set_show_and_a_refused_write_is_one_line(world: tuple[RunningServer, Admin],
                                                            tmp_path: Path) -> None:
    server, admin = world
    cid = _app(admin)
    doc = tmp_path / "policy.json"
    doc.write_text(json.dumps({"block_secrets": {"mode": "enforce"}}))
    shown = server.cli_json("policy", "set", "--app", cid, "--file", str(doc))
    assert shown["override"] == {"block_secrets": {"mode": "enforce", "allowed_apps": []}}
    assert server.cli_json("policy", "show", "--app", cid)["effective"]["block_secrets"]["mode"] == "enforce"
    refused = server.cli("secret", "add", cid, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: new client secrets are blocked by policy: use a certificate or federation (policy_secret_blocked)"]
    report = server.cli_json("policy", "test", "--app", cid, "--file", str(doc))
    assert [f for f in report["credentials"] if f["owner"] == cid] == []  # it has no credential yet
    bad = server.cli("policy", "set", "--app", cid, "--file", str(tmp_path / "missing.json"), check=False)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    assert server.cli_json("policy", "set", "--app", cid, "--clear")["override"] == {}


def _violation_events(server: RunningServer, subject: str) -> list[dict[str, Any]]:
    """The outbox rows of `policy.violation` events about `subject`, read from the server's SQLite file."""
    import sqlite3

    with sqlite3.connect(server.data_dir / "keyless.db") as db:
        rows = db.execute("SELECT payload FROM outbox_events WHERE type = 'policy.violation' AND subject = ?",
                          (subject,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def test_audit_mode_violations_become_policy_violation_events(world: tuple[RunningServer, Admin]) -> None:
    server, admin = world
    cid, secret, scope = _client(admin)
    _override(server, admin, cid, {"source_networks": {"mode": "audit", "networks": ["10.20.0.0/16"]}})
    with client_for(server) as http:
        for _ in range(3):
            assert token_request(http, server, secret_post(cid, secret, scope)).status_code == 200
    credential_id = _last(server, admin, cid)["credential_id"]
    deadline = time.monotonic() + 5
    while not (found := _violation_events(server, credential_id)) and time.monotonic() < deadline:
        time.sleep(0.1)  # sign-in events reach the outbox in batches, off the request path
    assert len(found) == 1  # three sign-ins, one notice a day
    assert found[0]["data"]["during"] == "sign_in"
    assert found[0]["data"]["reasons"] == ["policy_source_network"] and found[0]["data"]["source"] == "127.0.0.1"
    # A write in audit mode: its event is in the outbox with the write itself.
    _override(server, admin, cid, {"block_secrets": {"mode": "audit"}})
    made = manage(server, admin, "POST", f"/applications/{cid}/secrets", json={})
    assert made.status_code == 201
    [event] = _violation_events(server, made.json()["id"])
    assert (event["data"]["during"], event["data"]["reasons"]) == ("write", ["policy_secret_blocked"])
