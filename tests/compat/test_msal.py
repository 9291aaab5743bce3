"""Unmodified MSAL `ConfidentialClientApplication` against a real Keyless server (compat §1, §2.1).

Only configuration changes: the authority (or `oidc_authority`), instance discovery off, and the
private CA. The issued token is then checked the way a resource server would check it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import msal
import pytest

from keyless.verify import TokenValidator
from keyless.verify.claims import AccessToken
from tests.support.server import Admin, RunningServer

ROLE = "Data.Read"



def _header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


def _validate(server: RunningServer, token: str, audience: str) -> AccessToken:
    validator = TokenValidator(issuer=server.issuer, audience=audience, algorithms=["RS256"], ca=server.ca)
    try:
        return validator.validate(token)
    finally:
        validator._http.close()


def _assert_app_token(server: RunningServer, token: str, audience: str, client_id: str) -> None:
    assert _header(token)["typ"] == "at+jwt"
    claims = _validate(server, token, audience).claims
    assert claims["aud"] == audience
    assert ROLE in claims["roles"]
    assert claims["appid"] == claims["azp"] == claims["client_id"] == client_id
    assert claims["tid"] == server.tenant_id
    assert claims["iss"] == server.issuer
    assert claims["idtyp"] == "app"
    assert claims["azpacr"] == "1"


def _app(server: RunningServer, client_id: str, secret: str, **authority: Any) -> msal.ConfidentialClientApplication:
    if "oidc_authority" not in authority:
        authority.setdefault("authority", f"{server.url}/{server.tenant_id}")
        authority.setdefault("instance_discovery", False)
    return msal.ConfidentialClientApplication(client_id, client_credential=secret, verify=server.ca, **authority)


def test_acquire_token_for_client_and_cache(server: RunningServer, admin: Admin, resource_uri: str) -> None:
    client, secret = admin.client_with_role(resource_uri, ROLE)
    app = _app(server, client["client_id"], secret)

    first = app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])
    assert "error" not in first, first
    assert first["token_type"].lower() == "bearer"
    assert first["token_source"] == "identity_provider"
    _assert_app_token(server, first["access_token"], resource_uri, client["client_id"])

    second = app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]


def test_validate_authority_false_also_works(server: RunningServer, admin: Admin, resource_uri: str) -> None:
    client, secret = admin.client_with_role(resource_uri, ROLE)
    app = _app(server, client["client_id"], secret, instance_discovery=None, validate_authority=False)
    result = app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])
    assert "error" not in result, result
    _assert_app_token(server, result["access_token"], resource_uri, client["client_id"])


def test_wrong_secret_is_invalid_client_without_leaving_loopback(
    server: RunningServer, admin: Admin, resource_uri: str
) -> None:
    client, secret = admin.client_with_role(resource_uri, ROLE)
    wrong = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    app = _app(server, client["client_id"], wrong)
    result = app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])
    assert "access_token" not in result
    assert result["error"] == "invalid_client"
    assert wrong not in json.dumps(result)
    # The `foreign_lookups` fixture fails the test if MSAL tried the Microsoft alias lookup.


def test_authority_by_tenant_name(server: RunningServer, admin: Admin, resource_uri: str) -> None:
    client, secret = admin.client_with_role(resource_uri, ROLE)
    app = _app(server, client["client_id"], secret, authority=f"{server.url}/default")
    result = app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])
    assert "error" not in result, result
    # The issuer is always the GUID form, whatever spelling of the tenant the client used.
    _assert_app_token(server, result["access_token"], resource_uri, client["client_id"])


def test_oidc_authority(server: RunningServer, admin: Admin, resource_uri: str) -> None:
    client, secret = admin.client_with_role(resource_uri, ROLE)
    app = _app(server, client["client_id"], secret, oidc_authority=f"{server.url}/{server.tenant_id}/v2.0")
    result = app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])
    assert "error" not in result, result
    _assert_app_token(server, result["access_token"], resource_uri, client["client_id"])
    again = app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])
    assert again["access_token"] == result["access_token"]


def test_unknown_tenant_authority_is_refused(server: RunningServer) -> None:
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        _app(server, "00000000-0000-0000-0000-000000000001", "kls_x",
             authority=f"{server.url}/00000000-0000-0000-0000-00000000dead")
