"""Unmodified azure-identity `CertificateCredential` (sync and async) against a real Keyless server
(compat §2.2 columns C, D and E).

Only configuration changes: `authority`, `disable_instance_discovery=True` and the private CA through
`connection_verify`. The client's key and certificate sit in one PEM file, as azure-identity expects.
What the client puts on the wire is recorded by wrapping the HTTP libraries' request methods (requests for
the sync path, which goes through MSAL; aiohttp for the async one), never by changing the clients.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential
from azure.identity.aio import CertificateCredential as AsyncCertificateCredential

from keyless.verify import TokenValidator
from tests.support.certs import ClientCert, last_failure_detail, new_cert, register, set_tenant, signins
from tests.support.server import Admin, RunningServer, start_server, stop_server

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

ROLE = "Data.Read"


# -- helpers ------------------------------------------------------------------------------------------------

class Wire(list[dict[str, str]]):
    """The token requests (as form dicts) a client sent."""

    def assertion(self) -> str:
        forms = [f for f in self if "client_assertion" in f]
        assert forms, "the client sent no client_assertion"
        return forms[-1]["client_assertion"]


def _form(data: Any) -> dict[str, str] | None:
    if isinstance(data, dict):
        return {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in data.items()}
    if isinstance(data, bytes | str):
        text = data.decode() if isinstance(data, bytes) else data
        return {k: v[0] for k, v in parse_qs(text).items()}
    return None


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    seen = Wire()
    real_sync = requests.Session.request
    real_async = aiohttp.ClientSession._request

    def sync(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        form = _form(kwargs.get("data"))
        if form is not None:
            seen.append(form)
        return real_sync(self, method, url, *args, **kwargs)

    async def async_(self: aiohttp.ClientSession, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        form = _form(kwargs.get("data"))
        if form is not None:
            seen.append(form)
        return await real_async(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", sync)
    monkeypatch.setattr(aiohttp.ClientSession, "_request", async_)
    return seen


def _segment(part: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _b64u_padded(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode("ascii")


def _pem_file(tmp_path: Path, cert: ClientCert) -> str:
    path = tmp_path / "client.pem"
    path.write_bytes(cert.key_pem + cert.cert_pem)
    path.chmod(0o600)
    return str(path)


def _assert_valid(server: RunningServer, token: str, audience: str, client_id: str) -> dict[str, Any]:
    validator = TokenValidator(issuer=server.issuer, audience=audience, algorithms=["RS256"], ca=server.ca)
    try:
        claims = validator.validate(token).claims
    finally:
        validator._http.close()
    assert claims["aud"] == audience
    assert ROLE in claims["roles"]
    assert claims["appid"] == claims["azp"] == claims["client_id"] == client_id
    assert claims["azpacr"] == "2"  # certificate (Entra: 0 public, 1 secret, 2 certificate)
    assert claims["tid"] == server.tenant_id
    return dict(claims)


def _assert_signin(server: RunningServer, admin: Admin, client_id: str, cert_id: str, resource: str) -> None:
    event = signins(server, admin, client_id, result="success", limit=1)[0]
    assert event["credential_type"] == "certificate"
    assert event["azpacr"] == "2"
    assert event["credential_id"] == cert_id
    assert event["auth_method"] == "private_key_jwt"
    assert event["grant_type"] == "client_credentials"
    assert event["resource"] == resource


def _client_with_cert(server: RunningServer, admin: Admin, resource_uri: str) -> tuple[str, ClientCert, str]:
    admin.app(f"res-{resource_uri[-6:]}", identifier_uri=resource_uri, roles=(ROLE,))
    client_id = admin.app("cert-client")["client_id"]
    admin.grant(client_id, resource_uri, ROLE)
    cert = new_cert()
    cert_id = register(server, admin, client_id, cert)["id"]
    return client_id, cert, cert_id


def _credential(server: RunningServer, client_id: str, path: str, **kwargs: Any) -> CertificateCredential:
    return CertificateCredential(server.tenant_id, client_id, certificate_path=path, authority=server.url,
                                 disable_instance_discovery=True, connection_verify=server.ca, **kwargs)


def _async_credential(server: RunningServer, client_id: str, path: str) -> AsyncCertificateCredential:
    return AsyncCertificateCredential(server.tenant_id, client_id, certificate_path=path, authority=server.url,
                                      disable_instance_discovery=True, connection_verify=server.ca)


# -- sync (column C) ----------------------------------------------------------------------------------------

def test_certificate_credential_sync(server: RunningServer, admin: Admin, resource_uri: str, tmp_path: Path,
                                     wire: Wire) -> None:
    client_id, cert, cert_id = _client_with_cert(server, admin, resource_uri)
    with _credential(server, client_id, _pem_file(tmp_path, cert)) as cred:
        before = time.time()
        token = cred.get_token(f"{resource_uri}/.default")
        assert cred.get_token(f"{resource_uri}/.default").token == token.token  # MSAL's cache
    _assert_valid(server, token.token, resource_uri, client_id)
    assert before + 3500 <= token.expires_on <= time.time() + 3700
    _assert_signin(server, admin, client_id, cert_id, resource_uri)

    # What was sent: RS256 + padded SHA-1 x5t, aud = the token endpoint, float NumericDates.
    assertion = wire.assertion()
    head, claims = _segment(assertion.split(".")[0]), _segment(assertion.split(".")[1])
    assert head["alg"] == "RS256"
    assert head["x5t"] == _b64u_padded(hashlib.sha1(cert.der, usedforsecurity=False).digest())
    assert head["x5t"].endswith("=")
    assert "x5c" not in head
    assert claims["aud"] == server.token_endpoint
    assert claims["iss"] == claims["sub"] == client_id
    assert isinstance(claims["exp"], float)
    assert claims["exp"] - claims["iat"] == pytest.approx(600)


def test_certificate_credential_send_certificate_chain(server: RunningServer, admin: Admin, resource_uri: str,
                                                       tmp_path: Path, wire: Wire) -> None:
    client_id, cert, cert_id = _client_with_cert(server, admin, resource_uri)
    with _credential(server, client_id, _pem_file(tmp_path, cert), send_certificate_chain=True) as cred:
        token = cred.get_token(f"{resource_uri}/.default")
    _assert_valid(server, token.token, resource_uri, client_id)
    _assert_signin(server, admin, client_id, cert_id, resource_uri)
    head = _segment(wire.assertion().split(".")[0])
    assert head["alg"] == "RS256"
    assert "x5t" in head
    assert isinstance(head["x5c"], list) and len(head["x5c"]) == 1
    assert base64.b64decode("".join(head["x5c"][0].split())) == cert.der


def test_certificate_not_registered_sync(server: RunningServer, admin: Admin, resource_uri: str,
                                         tmp_path: Path) -> None:
    client_id, _registered, _ = _client_with_cert(server, admin, resource_uri)
    stranger = new_cert(cn="not-registered")
    with _credential(server, client_id, _pem_file(tmp_path, stranger)) as cred, \
            pytest.raises(ClientAuthenticationError) as caught:
        cred.get_token(f"{resource_uri}/.default")
    message = str(caught.value)
    assert "invalid_client" in message
    assert "client authentication failed (invalid_client)" in message
    assert "PRIVATE KEY" not in message
    assert last_failure_detail(server, admin, client_id) == "no_matching_certificate"


def test_strict_audience_refuses_token_endpoint_aud(tmp_path: Path, resource_uri: str) -> None:
    """B01 through an unmodified client: azure-identity addresses its assertion to the token endpoint,
    which a tenant in strict (RFC 10070) mode refuses. A server of its own, so that the shared one keeps
    the Entra-compatible default."""
    srv = start_server(tmp_path / "strict")
    try:
        with Admin(srv) as admin:
            client_id, cert, _ = _client_with_cert(srv, admin, resource_uri)
            path = _pem_file(tmp_path, cert)
            try:
                assert set_tenant(srv, admin, assertion_audience="strict")["assertion_audience"] == "strict"
                with _credential(srv, client_id, path) as cred, pytest.raises(ClientAuthenticationError) as caught:
                    cred.get_token(f"{resource_uri}/.default")
                assert "invalid_client" in str(caught.value)
                assert last_failure_detail(srv, admin, client_id) == "audience_mismatch"
            finally:
                set_tenant(srv, admin, assertion_audience="entra")
            # Back in Entra-compatible mode the same client works again.
            with _credential(srv, client_id, path) as cred:
                assert cred.get_token(f"{resource_uri}/.default").token
    finally:
        stop_server(srv)


# -- async (column E) ---------------------------------------------------------------------------------------

async def test_async_certificate_credential_wire_format(
    server: RunningServer, admin: Admin, resource_uri: str, tmp_path: Path, wire: Wire
) -> None:
    """What azure-identity's async path sends (compat §2.2 column E), whatever the server answers."""
    client_id, cert, _ = _client_with_cert(server, admin, resource_uri)
    async with _async_credential(server, client_id, _pem_file(tmp_path, cert)) as cred:
        with contextlib.suppress(ClientAuthenticationError):  # see test_async_certificate_credential below
            await cred.get_token(f"{resource_uri}/.default")
    assertion = wire.assertion()
    segments = assertion.split(".")
    assert len(segments) == 3
    assert all(len(s) % 4 == 0 for s in segments)  # padded base64url in every segment
    assert segments[2].endswith("=")
    head, claims = _segment(segments[0]), _segment(segments[1])
    assert head["alg"] == "PS256"
    assert head["x5t#S256"] == _b64u_padded(hashlib.sha256(cert.der).digest())
    assert claims["aud"] == server.token_endpoint
    assert "iat" not in claims
    assert claims["exp"] - claims["nbf"] == 1800


async def test_async_certificate_credential(server: RunningServer, admin: Admin, resource_uri: str,
                                            tmp_path: Path) -> None:
    client_id, cert, cert_id = _client_with_cert(server, admin, resource_uri)
    async with _async_credential(server, client_id, _pem_file(tmp_path, cert)) as cred:
        token = await cred.get_token(f"{resource_uri}/.default")
        again = await cred.get_token(f"{resource_uri}/.default")
    assert again.token == token.token
    _assert_valid(server, token.token, resource_uri, client_id)
    _assert_signin(server, admin, client_id, cert_id, resource_uri)


@pytest.fixture(autouse=True)
def _no_leftover_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", raising=False)
    yield
