"""The token endpoint over real HTTPS: client authentication, resource selection, errors, sign-in log."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.server.conftest import (
    claims_of,
    header_of,
    secret_post,
    token_request,
    validate,
    wrong,
)
from tests.support.server import Admin, RunningServer

ROLE = "Data.Read"
SUCCESS_KEYS = {"token_type", "expires_in", "ext_expires_in", "access_token"}


def _assert_no_store(resp: httpx.Response) -> None:
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["pragma"] == "no-cache"


def _assert_error(resp: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = dict(resp.json())
    assert body["error"] == error, body
    assert set(body) <= {"error", "error_description"}
    _assert_no_store(resp)
    return body


def _basic(client_id: str, secret: str, *, encode_all: bool = False) -> str:
    def enc(value: str) -> str:
        return "".join(f"%{b:02X}" for b in value.encode()) if encode_all else value

    raw = f"{enc(client_id)}:{enc(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


# -- success ---------------------------------------------------------------------------------------


def test_client_secret_post(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    resp = token_request(http, server, secret_post(client["client_id"], secret, f"{uri}/.default"))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    _assert_no_store(resp)
    body = resp.json()
    # Exactly Entra's client_credentials shape: no refresh_token (RFC 6749 §4.4.3), no scope (which
    # MSAL would turn into its cache target).
    assert set(body) == SUCCESS_KEYS
    assert body["token_type"] == "Bearer"
    assert type(body["expires_in"]) is int and body["expires_in"] == 3600
    assert type(body["ext_expires_in"]) is int
    assert header_of(body["access_token"])["typ"] == "at+jwt"
    claims = validate(server, http, body["access_token"], uri)
    assert claims["aud"] == uri
    assert claims["roles"] == [ROLE]
    assert claims["appid"] == claims["azp"] == claims["client_id"] == client["client_id"]
    assert claims["sub"] == claims["oid"] == client["object_id"]
    assert claims["tid"] == server.tenant_id
    assert claims["idtyp"] == "app"
    assert claims["azpacr"] == "1"
    assert claims["exp"] - claims["iat"] == 3600


def test_client_secret_basic(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    resp = token_request(http, server, {"grant_type": "client_credentials", "scope": f"{uri}/.default"},
                         headers={"Authorization": _basic(client["client_id"], secret)})
    assert resp.status_code == 200, resp.text
    _assert_no_store(resp)
    assert set(resp.json()) == SUCCESS_KEYS
    claims = validate(server, http, resp.json()["access_token"], uri)
    assert claims["client_id"] == client["client_id"]
    assert claims["roles"] == [ROLE]


def test_client_secret_basic_is_form_urlencoded(
    server: RunningServer, admin: Admin, http: httpx.Client, uri: str
) -> None:
    """RFC 6749 §2.3.1 / App. B: id and secret are form-urlencoded before base64; a server that skips
    the decoding only works by luck for secrets made of unreserved characters."""
    client, secret = admin.client_with_role(uri, ROLE)
    resp = token_request(http, server, {"grant_type": "client_credentials", "scope": f"{uri}/.default"},
                         headers={"Authorization": _basic(client["client_id"], secret, encode_all=True)})
    assert resp.status_code == 200, resp.text
    assert validate(server, http, resp.json()["access_token"], uri)["client_id"] == client["client_id"]


def test_client_secret_basic_wrong_secret(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    resp = token_request(http, server, {"grant_type": "client_credentials", "scope": f"{uri}/.default"},
                         headers={"Authorization": _basic(client["client_id"], wrong(secret))})
    _assert_error(resp, 401, "invalid_client")
    assert resp.headers["www-authenticate"].lower().startswith("basic")


def test_resource_parameter_alone(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    data = {"grant_type": "client_credentials", "client_id": client["client_id"], "client_secret": secret,
            "resource": uri}
    resp = token_request(http, server, data)
    assert resp.status_code == 200, resp.text
    assert set(resp.json()) == SUCCESS_KEYS
    claims = validate(server, http, resp.json()["access_token"], uri)
    assert claims["aud"] == uri and claims["roles"] == [ROLE]


def test_resource_parameter_with_matching_scope(
    server: RunningServer, admin: Admin, http: httpx.Client, uri: str
) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    resp = token_request(http, server, {**secret_post(client["client_id"], secret, f"{uri}/.default"),
                                        "resource": uri})
    assert resp.status_code == 200, resp.text
    assert validate(server, http, resp.json()["access_token"], uri)["aud"] == uri


def test_resource_parameter_with_other_scope_is_invalid_target(
    server: RunningServer, admin: Admin, http: httpx.Client, uri: str
) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    other = f"api://other-{uuid.uuid4().hex[:8]}"
    resp = token_request(http, server, {**secret_post(client["client_id"], secret, f"{other}/.default"),
                                        "resource": uri})
    _assert_error(resp, 400, "invalid_target")


def test_scope_by_resource_client_id(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    resource = admin.app(f"res-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=(ROLE,))
    client = admin.app(f"client-{uuid.uuid4().hex[:6]}")
    secret = admin.secret(client["client_id"])["secret"]
    admin.grant(client["client_id"], uri, ROLE)
    guid = resource["client_id"]
    resp = token_request(http, server, secret_post(client["client_id"], secret, f"{guid}/.default"))
    assert resp.status_code == 200, resp.text
    claims = validate(server, http, resp.json()["access_token"], guid)
    assert claims["aud"] == guid
    assert claims["roles"] == [ROLE]


def test_open_resource_gives_token_without_roles(
    server: RunningServer, admin: Admin, http: httpx.Client, uri: str
) -> None:
    admin.app(f"open-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=(ROLE,), open_to_tenant=True)
    client = admin.app(f"client-{uuid.uuid4().hex[:6]}")
    secret = admin.secret(client["client_id"])["secret"]
    resp = token_request(http, server, secret_post(client["client_id"], secret, f"{uri}/.default"))
    assert resp.status_code == 200, resp.text
    claims = validate(server, http, resp.json()["access_token"], uri)
    assert claims["aud"] == uri
    assert "roles" not in claims


# -- refusals --------------------------------------------------------------------------------------


def test_ungranted_client_on_closed_resource(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    admin.app(f"closed-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=(ROLE,))
    client = admin.app(f"client-{uuid.uuid4().hex[:6]}")
    secret = admin.secret(client["client_id"])["secret"]
    resp = token_request(http, server, secret_post(client["client_id"], secret, f"{uri}/.default"))
    body = _assert_error(resp, 400, "invalid_scope")
    assert set(body) == {"error", "error_description"}
    assert isinstance(body["error_description"], str) and body["error_description"]


def test_unknown_resource_scope(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    resp = token_request(http, server, secret_post(client["client_id"], secret,
                                                   f"api://nope-{uuid.uuid4().hex[:8]}/.default"))
    _assert_error(resp, 400, "invalid_scope")


def test_unknown_resource_parameter(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    data = {"grant_type": "client_credentials", "client_id": client["client_id"], "client_secret": secret,
            "resource": f"api://nope-{uuid.uuid4().hex[:8]}"}
    _assert_error(token_request(http, server, data), 400, "invalid_target")


def test_disabled_application_is_invalid_client(
    server: RunningServer, admin: Admin, http: httpx.Client, uri: str
) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    data = secret_post(client["client_id"], secret, f"{uri}/.default")
    assert token_request(http, server, data).status_code == 200
    admin.api.call("PATCH", f"/applications/{client['client_id']}", json_body={"enabled": False})
    body = _assert_error(token_request(http, server, data), 401, "invalid_client")
    assert "disabled" not in str(body)  # one answer for every authentication failure
    admin.api.call("PATCH", f"/applications/{client['client_id']}", json_body={"enabled": True})
    assert token_request(http, server, data).status_code == 200


def test_revoked_secret_is_invalid_client(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, first = admin.client_with_role(uri, ROLE)
    second = admin.secret(client["client_id"])
    scope = f"{uri}/.default"
    assert token_request(http, server, secret_post(client["client_id"], second["secret"], scope)).status_code == 200
    admin.api.call("DELETE", f"/applications/{client['client_id']}/secrets/{second['id']}")
    _assert_error(token_request(http, server, secret_post(client["client_id"], second["secret"], scope)),
                  401, "invalid_client")
    # The other secret of the same client is untouched.
    assert token_request(http, server, secret_post(client["client_id"], first, scope)).status_code == 200


def test_removed_grant_stops_tokens(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    data = secret_post(client["client_id"], secret, f"{uri}/.default")
    assert token_request(http, server, data).status_code == 200
    grants = admin.api.call("GET", "/grants", params={"client_id": client["client_id"]})
    assert len(grants) == 1
    admin.api.call("DELETE", f"/grants/{grants[0]['id']}")
    _assert_error(token_request(http, server, data), 400, "invalid_scope")


def test_disabled_resource_is_invalid_scope(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    resource = admin.app(f"res-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=(ROLE,))
    client = admin.app(f"client-{uuid.uuid4().hex[:6]}")
    secret = admin.secret(client["client_id"])["secret"]
    admin.grant(client["client_id"], uri, ROLE)
    data = secret_post(client["client_id"], secret, f"{uri}/.default")
    assert token_request(http, server, data).status_code == 200
    admin.api.call("PATCH", f"/applications/{resource['client_id']}", json_body={"enabled": False})
    _assert_error(token_request(http, server, data), 400, "invalid_scope")


def test_deleted_client_is_invalid_client(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    data = secret_post(client["client_id"], secret, f"{uri}/.default")
    assert token_request(http, server, data).status_code == 200
    admin.api.call("DELETE", f"/applications/{client['client_id']}")
    _assert_error(token_request(http, server, data), 401, "invalid_client")


def test_get_is_405_with_allow(server: RunningServer, http: httpx.Client) -> None:
    resp = http.get(server.token_endpoint)
    _assert_error(resp, 405, "invalid_request")
    assert resp.headers["allow"] == "POST"


def test_credentials_in_query_are_refused(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    resp = http.post(server.token_endpoint, params={"client_secret": secret},
                     data={"grant_type": "client_credentials", "client_id": client["client_id"],
                           "scope": f"{uri}/.default"})
    _assert_error(resp, 400, "invalid_request")


def test_two_authentication_methods_are_refused(
    server: RunningServer, admin: Admin, http: httpx.Client, uri: str
) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    resp = token_request(http, server, secret_post(client["client_id"], secret, f"{uri}/.default"),
                         headers={"Authorization": _basic(client["client_id"], secret)})
    _assert_error(resp, 400, "invalid_request")


def test_unknown_client_is_invalid_client(server: RunningServer, http: httpx.Client, uri: str) -> None:
    resp = token_request(http, server, secret_post(str(uuid.uuid4()), "kls_" + "A" * 49, f"{uri}/.default"))
    _assert_error(resp, 401, "invalid_client")


def test_unsupported_grant_type(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    data = {**secret_post(client["client_id"], secret, f"{uri}/.default"), "grant_type": "password"}
    _assert_error(token_request(http, server, data), 400, "unsupported_grant_type")


def test_missing_grant_type(server: RunningServer, admin: Admin, http: httpx.Client, uri: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    data = secret_post(client["client_id"], secret, f"{uri}/.default")
    del data["grant_type"]
    _assert_error(token_request(http, server, data), 400, "invalid_request")


@pytest.mark.parametrize("tenant", ["00000000-0000-4000-8000-0000000000aa", "no-such-tenant"])
def test_unknown_tenant(server: RunningServer, admin: Admin, http: httpx.Client, uri: str, tenant: str) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    resp = token_request(http, server, secret_post(client["client_id"], secret, f"{uri}/.default"), tenant=tenant)
    _assert_error(resp, 400, "invalid_request")


def test_tenant_by_name_and_by_guid_give_the_same_issuer(
    server: RunningServer, admin: Admin, http: httpx.Client, uri: str
) -> None:
    client, secret = admin.client_with_role(uri, ROLE)
    issuers = []
    for tenant in ("default", server.tenant_id, server.tenant_id.upper()):
        resp = token_request(http, server, secret_post(client["client_id"], secret, f"{uri}/.default"),
                             tenant=tenant)
        assert resp.status_code == 200, (tenant, resp.text)
        claims = validate(server, http, resp.json()["access_token"], uri)
        issuers.append(claims["iss"])
        assert claims["tid"] == server.tenant_id
    assert issuers == [server.issuer] * 3
    assert server.tenant_id in server.issuer


# -- sign-in log -----------------------------------------------------------------------------------


def test_signin_log_records_success_and_failure_without_secrets(
    server: RunningServer, admin: Admin, http: httpx.Client, uri: str
) -> None:
    admin.app(f"res-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=(ROLE,))
    client = admin.app(f"client-{uuid.uuid4().hex[:6]}")
    created = admin.secret(client["client_id"])
    secret = created["secret"]
    admin.grant(client["client_id"], uri, ROLE)
    cid = client["client_id"]

    ok = token_request(http, server, secret_post(cid, secret, f"{uri}/.default"))
    assert ok.status_code == 200
    jti = claims_of(ok.json()["access_token"])["jti"]
    bad_secret = wrong(secret)
    bad = token_request(http, server, secret_post(cid, bad_secret, f"{uri}/.default"))
    assert bad.status_code == 401

    resp = http.get(f"{server.url}/{server.tenant_id}/manage/v1/logs/signins", params={"client_id": cid},
                    headers={"Authorization": f"Bearer {admin.api.token()}"})
    assert resp.status_code == 200, resp.text
    assert secret not in resp.text and bad_secret not in resp.text
    assert secret[4:20] not in resp.text  # not even a long fragment of it
    entries = resp.json()
    assert [e["result"] for e in entries] == ["failure", "success"]  # newest first
    failure, success = entries
    assert success["client_id"] == cid
    assert success["error"] is None
    assert success["credential_id"] == created["id"]
    assert success["credential_type"] == "secret"
    assert success["azpacr"] == "1"
    assert success["token_id"] == jti
    assert success["resource"] == uri
    assert failure["client_id"] == cid
    assert failure["error"] == "invalid_client"
    assert failure["credential_id"] is None
    assert failure["token_id"] is None
    assert failure["detail"] == "wrong_secret"

    # The same through the CLI's own client, which is what `keyless logs signins` shows.
    via_cli = admin.api.call("GET", "/logs/signins", params={"client_id": cid})
    assert [e["result"] for e in via_cli] == ["failure", "success"]


def test_refusals_of_the_http_shell_reach_the_signin_log(
    server: RunningServer, admin: Admin, http: httpx.Client, uri: str
) -> None:
    """A body past the cap and a repeated Authorization header are refused before the request is
    parsed, and still leave a sign-in record (issue 12 scope 3): an operator sees every refusal."""
    client, secret = admin.client_with_role(uri, ROLE)
    form = secret_post(client["client_id"], secret, f"{uri}/.default")
    big = token_request(http, server, {**form, "scope": "a" * 40_000})
    assert _assert_error(big, 400, "invalid_request")["error_description"] == "request body too large"
    auth = _basic(client["client_id"], secret)
    twice = http.post(server.token_endpoint, content=str(httpx.QueryParams(form)).encode(),
                      headers=[("content-type", "application/x-www-form-urlencoded"), ("authorization", auth),
                               ("authorization", auth)])
    assert _assert_error(twice, 400, "invalid_request")["error_description"] == "a request header is repeated"

    failures = admin.api.call("GET", "/logs/signins", params={"result": "failure", "limit": 2})
    assert [(e["error"], e["detail"], e["client_id"]) for e in failures] == [
        ("invalid_request", "duplicate_header", None), ("invalid_request", "body_too_large", None)]
