"""The management API over real HTTPS: bearer authorization, problem details, validation, audit."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.server.conftest import secret_post, token_request
from tests.support.server import Admin, RunningServer

MANAGEMENT = "urn:keyless:management"


def _url(server: RunningServer, path: str) -> str:
    return f"{server.url}/{server.tenant_id}/manage/v1{path}"


def _call(http: httpx.Client, server: RunningServer, method: str, path: str, token: str | None,
          body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return http.request(method, _url(server, path), json=body, headers=headers)


def _problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].split(";")[0] == "application/problem+json"
    body = dict(resp.json())
    assert body["code"] == code, body
    assert body["status"] == status
    assert isinstance(body["title"], str) and isinstance(body["detail"], str)
    assert body["type"] == f"urn:keyless:problem:{code}"
    return body


def _token(http: httpx.Client, server: RunningServer, client_id: str, secret: str, resource: str) -> str:
    resp = token_request(http, server, secret_post(client_id, secret, f"{resource}/.default"))
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def _new_client(admin: Admin) -> tuple[str, str]:
    client = admin.app(f"mgmt-{uuid.uuid4().hex[:8]}")
    return client["client_id"], admin.secret(client["client_id"])["secret"]


# -- authentication and authorization ---------------------------------------------------------------


def test_no_token(server: RunningServer, http: httpx.Client) -> None:
    resp = _call(http, server, "GET", "/applications", None)
    _problem(resp, 401, "unauthenticated")
    challenge = resp.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert "error=" not in challenge  # RFC 6750 §3.1: no error code when no credentials were sent


def test_unknown_tenant_looks_like_no_token(server: RunningServer, http: httpx.Client, admin: Admin) -> None:
    resp = http.get(f"{server.url}/no-such-tenant/manage/v1/applications",
                    headers={"Authorization": f"Bearer {admin.api.token()}"})
    _problem(resp, 401, "unauthenticated")


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c", "Basic Zm9vOmJhcg=="])
def test_garbage_token(server: RunningServer, http: httpx.Client, header: str) -> None:
    resp = http.get(_url(server, "/applications"), headers={"Authorization": header})
    _problem(resp, 401, "invalid_token")
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


def test_token_for_another_audience_is_refused(server: RunningServer, http: httpx.Client, admin: Admin) -> None:
    uri = f"api://x-{uuid.uuid4().hex[:8]}"
    client, secret = admin.client_with_role(uri, "Data.Read")
    other = _token(http, server, client["client_id"], secret, uri)
    _problem(_call(http, server, "GET", "/applications", other), 401, "invalid_token")


def test_admin_token_with_tampered_signature_is_refused(
    server: RunningServer, http: httpx.Client, admin: Admin
) -> None:
    token = admin.api.token()
    assert _call(http, server, "GET", "/applications", token).status_code == 200
    head, payload, sig = token.split(".")
    tampered = ".".join([head, payload, sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")])
    _problem(_call(http, server, "GET", "/applications", tampered), 401, "invalid_token")


def test_client_without_a_management_role_gets_no_management_token(
    server: RunningServer, http: httpx.Client, admin: Admin
) -> None:
    # The management API is a closed resource: an application without a role on it gets no token.
    client_id, secret = _new_client(admin)
    resp = token_request(http, server, secret_post(client_id, secret, f"{MANAGEMENT}/.default"))
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"


def test_reader_can_read_but_not_write(server: RunningServer, http: httpx.Client, admin: Admin) -> None:
    client_id, secret = _new_client(admin)
    admin.grant(client_id, MANAGEMENT, "Keyless.Reader")
    token = _token(http, server, client_id, secret, MANAGEMENT)

    for path in ("/applications", "/tenant", f"/applications/{client_id}", "/logs/audit", "/keys"):
        assert _call(http, server, "GET", path, token).status_code == 200, path

    name = f"reader-made-{uuid.uuid4().hex[:8]}"
    resp = _call(http, server, "POST", "/applications", token, {"display_name": name})
    _problem(resp, 403, "forbidden")
    assert "insufficient_scope" in resp.headers["www-authenticate"]
    _problem(_call(http, server, "PATCH", f"/applications/{client_id}", token, {"enabled": False}), 403, "forbidden")
    _problem(_call(http, server, "POST", f"/applications/{client_id}/secrets", token, {}), 403, "forbidden")
    # Nothing was written.
    apps = admin.api.call("GET", "/applications")
    assert name not in [a["display_name"] for a in apps]
    assert admin.api.call("GET", f"/applications/{client_id}")["enabled"] is True
    assert len(admin.api.call("GET", f"/applications/{client_id}/secrets")) == 1


# -- problem details --------------------------------------------------------------------------------


def test_unknown_application(server: RunningServer, http: httpx.Client, admin: Admin) -> None:
    token = admin.api.token()
    for ref in (str(uuid.uuid4()), "not-a-guid"):
        _problem(_call(http, server, "GET", f"/applications/{ref}", token), 404, "application_not_found")


def test_duplicate_identifier_uri(server: RunningServer, http: httpx.Client, admin: Admin) -> None:
    token = admin.api.token()
    uri = f"api://dup-{uuid.uuid4().hex[:8]}"
    first = _call(http, server, "POST", "/applications", token, {"display_name": "dup 1", "identifier_uri": uri})
    assert first.status_code == 201, first.text
    second = _call(http, server, "POST", "/applications", token, {"display_name": "dup 2", "identifier_uri": uri})
    _problem(second, 409, "identifier_uri_in_use")
    owners = [a for a in admin.api.collect("/applications") if a["identifier_uri"] == uri]
    assert [a["display_name"] for a in owners] == ["dup 1"]


@pytest.mark.parametrize("extra", [
    {"client_id": "11111111-2222-4333-8444-555555555555"},
    {"object_id": "11111111-2222-4333-8444-555555555555"},
    {"created_at": 0},
    {"enabled": False},
    {"no_such_field": 1},
])
def test_unknown_or_server_owned_field_is_rejected(
    server: RunningServer, http: httpx.Client, admin: Admin, extra: dict[str, Any]
) -> None:
    name = f"h03-{uuid.uuid4().hex[:8]}"
    resp = _call(http, server, "POST", "/applications", admin.api.token(), {"display_name": name, **extra})
    body = _problem(resp, 400, "validation_failed")
    field = next(iter(extra))
    assert any(field in err["loc"] for err in body["errors"]), body
    assert name not in [a["display_name"] for a in admin.api.call("GET", "/applications")]


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/no-such-collection", 404),
                                                        ("PUT", "/applications", 405)])
def test_routing_errors_are_problem_details(
    server: RunningServer, http: httpx.Client, admin: Admin, method: str, path: str, status: int
) -> None:
    resp = _call(http, server, method, path, admin.api.token())
    assert resp.status_code == status
    assert resp.headers["content-type"].split(";")[0] == "application/problem+json"
    assert isinstance(resp.json().get("code"), str)


def test_missing_required_field(server: RunningServer, http: httpx.Client, admin: Admin) -> None:
    _problem(_call(http, server, "POST", "/applications", admin.api.token(), {"roles": []}), 400,
             "validation_failed")


# -- secrets and audit ------------------------------------------------------------------------------


def test_secret_is_returned_once_and_never_listed(server: RunningServer, http: httpx.Client, admin: Admin) -> None:
    token = admin.api.token()
    client = admin.app(f"sec-{uuid.uuid4().hex[:8]}")
    created = _call(http, server, "POST", f"/applications/{client['client_id']}/secrets", token, {})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    secret = created.json()["secret"]
    assert secret.startswith("kls_")

    listed = _call(http, server, "GET", f"/applications/{client['client_id']}/secrets", token)
    assert listed.status_code == 200
    assert secret not in listed.text
    entries = listed.json()
    assert [e["id"] for e in entries] == [created.json()["id"]]
    assert "secret" not in entries[0]
    assert entries[0]["hint"] == secret[4:7]
    app = _call(http, server, "GET", f"/applications/{client['client_id']}", token)
    assert secret not in app.text


def test_audit_records_actor_and_never_secrets(server: RunningServer, http: httpx.Client, admin: Admin) -> None:
    name = f"audited-{uuid.uuid4().hex[:8]}"
    app = admin.app(name, identifier_uri=f"api://{name}", roles=("Data.Read",))
    created = admin.secret(app["client_id"])

    token = admin.api.token()
    resp = _call(http, server, "GET", "/logs/audit?action=application.create", token)
    assert resp.status_code == 200, resp.text
    events = [e for e in resp.json() if e["target_id"] == app["client_id"]]
    assert len(events) == 1
    event = events[0]
    assert event["action"] == "application.create"
    assert event["actor"] == admin.api.target.client_id
    assert event["target_type"] == "application"
    assert event["details"]["display_name"] == name
    assert event["details"]["identifier_uri"] == f"api://{name}"

    everything = _call(http, server, "GET", "/logs/audit?limit=1000", token)
    assert everything.status_code == 200
    adds = [e for e in everything.json() if e["action"] == "secret.add" and e["target_id"] == app["client_id"]]
    assert len(adds) == 1
    assert adds[0]["details"]["secret_id"] == created["id"]
    assert adds[0]["actor"] == admin.api.target.client_id
    key_file = admin.api.target.client_key
    assert key_file, "the CLI's credential is a certificate and its private key"
    key_lines = [line for line in key_file.read_text().splitlines() if line and not line.startswith("-----")]
    for text in (everything.text, json.dumps(everything.json())):
        assert created["secret"] not in text
        assert created["secret"][4:20] not in text
        assert not any(line in text for line in key_lines)


def test_openapi_document(server: RunningServer, http: httpx.Client) -> None:
    resp = http.get(f"{server.url}/manage/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"].startswith("3.")
    assert "/{tenant}/manage/v1/applications" in doc["paths"]
    assert {"get", "post"} <= set(doc["paths"]["/{tenant}/manage/v1/applications"])
