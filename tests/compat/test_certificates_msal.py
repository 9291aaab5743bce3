"""Unmodified MSAL `ConfidentialClientApplication` with a certificate credential against a real Keyless
server (compat §2.2 columns A and B).

Only configuration changes: the authority, instance discovery off, and the private CA. What MSAL signs is
recorded by wrapping `requests.Session.request`, never by changing MSAL.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs

import msal
import pytest
import requests

from keyless.verify import TokenValidator
from tests.support.certs import ClientCert, last_failure_detail, new_cert, register, signins
from tests.support.server import Admin, RunningServer

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

ROLE = "Data.Read"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The form bodies MSAL posted."""
    seen: list[dict[str, str]] = []
    real = requests.Session.request

    def record(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        data = kwargs.get("data")
        if isinstance(data, dict):
            seen.append({str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in data.items()})
        elif isinstance(data, bytes | str):
            text = data.decode() if isinstance(data, bytes) else data
            seen.append({k: v[0] for k, v in parse_qs(text).items()})
        return real(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", record)
    return seen


def _segment(part: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _assertion(sent: list[dict[str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    forms = [f for f in sent if "client_assertion" in f]
    assert forms, "MSAL sent no client_assertion"
    head, payload, _ = forms[-1]["client_assertion"].split(".")
    return _segment(head), _segment(payload)


def _client_with_cert(server: RunningServer, admin: Admin, resource_uri: str) -> tuple[str, ClientCert, str]:
    admin.app(f"res-{resource_uri[-6:]}", identifier_uri=resource_uri, roles=(ROLE,))
    client_id = admin.app("msal-cert-client")["client_id"]
    admin.grant(client_id, resource_uri, ROLE)
    cert = new_cert()
    return client_id, cert, register(server, admin, client_id, cert)["id"]


def _app(server: RunningServer, client_id: str, credential: dict[str, str]) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(client_id, client_credential=credential,
                                              authority=f"{server.url}/{server.tenant_id}",
                                              instance_discovery=False, verify=server.ca)


def _assert_token(server: RunningServer, admin: Admin, result: dict[str, Any], resource_uri: str, client_id: str,
                  cert_id: str) -> None:
    assert "error" not in result, result
    assert result["token_type"].lower() == "bearer"
    validator = TokenValidator(issuer=server.issuer, audience=resource_uri, algorithms=["RS256"], ca=server.ca)
    try:
        claims = validator.validate(result["access_token"]).claims
    finally:
        validator._http.close()
    assert claims["appid"] == claims["azp"] == client_id
    assert claims["azpacr"] == "2"
    assert ROLE in claims["roles"]
    event = signins(server, admin, client_id, result="success", limit=1)[0]
    assert (event["credential_type"], event["credential_id"], event["auth_method"]) == (
        "certificate", cert_id, "private_key_jwt")


def test_public_certificate_credential(server: RunningServer, admin: Admin, resource_uri: str,
                                       sent: list[dict[str, str]]) -> None:
    """Column A: PS256, x5t#S256 and an x5c entry with embedded newlines; float exp/iat."""
    client_id, cert, cert_id = _client_with_cert(server, admin, resource_uri)
    app = _app(server, client_id, {"private_key": cert.key_pem.decode(), "public_certificate": cert.cert_pem.decode()})
    result = app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])
    _assert_token(server, admin, result, resource_uri, client_id, cert_id)
    assert app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])["token_source"] == "cache"

    head, claims = _assertion(sent)
    assert head["alg"] == "PS256"
    assert head["x5t#S256"] == base64.urlsafe_b64encode(hashlib.sha256(cert.der).digest()).decode()
    assert len(head["x5c"]) == 1 and "\n" in head["x5c"][0]
    assert base64.b64decode("".join(head["x5c"][0].split())) == cert.der
    assert claims["aud"] == server.token_endpoint
    assert isinstance(claims["exp"], float) and isinstance(claims["iat"], float)
    assert "nbf" not in claims


def test_thumbprint_credential(server: RunningServer, admin: Admin, resource_uri: str,
                               sent: list[dict[str, str]]) -> None:
    """Column B: RS256 with a padded SHA-1 x5t and no x5c."""
    client_id, cert, cert_id = _client_with_cert(server, admin, resource_uri)
    app = _app(server, client_id, {"private_key": cert.key_pem.decode(), "thumbprint": cert.sha1_hex})
    result = app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])
    _assert_token(server, admin, result, resource_uri, client_id, cert_id)

    head, claims = _assertion(sent)
    assert head["alg"] == "RS256"
    assert head["x5t"] == base64.urlsafe_b64encode(bytes.fromhex(cert.sha1_hex)).decode()
    assert "x5c" not in head and "x5t#S256" not in head
    assert claims["iss"] == claims["sub"] == client_id


def test_unregistered_certificate_is_invalid_client(server: RunningServer, admin: Admin, resource_uri: str) -> None:
    client_id, _, _ = _client_with_cert(server, admin, resource_uri)
    stranger = new_cert(cn="stranger")
    app = _app(server, client_id, {"private_key": stranger.key_pem.decode(),
                                   "public_certificate": stranger.cert_pem.decode()})
    result = app.acquire_token_for_client(scopes=[f"{resource_uri}/.default"])
    assert result.get("error") == "invalid_client", result
    assert "access_token" not in result
    assert last_failure_detail(server, admin, client_id) == "no_matching_certificate"
