"""Credential caching, refresh-ahead and failure handling, over `httpx.MockTransport` with a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from keyless.client import (
    AccessToken,
    CertificateCredential,
    ClientSecretCredential,
    CredentialError,
    OAuthError,
    RetryPolicy,
    TokenRequestError,
    aio,
    load_certificate_files,
)
from keyless.client import tokens as token_types
from keyless.crypto.client_keys import generate_client_key, private_key_pem, self_signed_certificate

NOW = 1_800_000_000.0
AUTHORITY = "https://keyless.test"
SCOPE = "api://orders/.default"


class Server:
    """A fake token endpoint: answers from a queue (default: a fresh token) and records requests."""

    def __init__(self, lifetime: int = 3600) -> None:
        self.lifetime = lifetime
        self.queue: list[httpx.Response] = []
        self.requests: list[httpx.Request] = []
        self.issued = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"issuer": f"{AUTHORITY}/t1/v2.0",
                                             "token_endpoint": f"{AUTHORITY}/t1/oauth2/v2.0/token"})
        if self.queue:
            return self.queue.pop(0)
        self.issued += 1
        return httpx.Response(200, json={"token_type": "Bearer", "expires_in": self.lifetime,
                                         "access_token": f"token-{self.issued}"})


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _credential(server: Server, clock: Clock, **kwargs: Any) -> ClientSecretCredential:
    cred = ClientSecretCredential("t1", "cid", "the-client-secret", authority=AUTHORITY,
                                  http_client=httpx.Client(transport=httpx.MockTransport(server)), **kwargs)
    cred._clock = clock
    cred._sleep = lambda s: setattr(clock, "now", clock.now + s)
    cred._rng = lambda a, b: b
    return cred


def test_cache_per_scopes_and_refresh_at_half_life() -> None:
    server, clock = Server(), Clock()
    cred = _credential(server, clock)
    first = cred.get_token(SCOPE)
    assert first.token == "token-1" and first.expires_on == int(NOW + 3600)
    assert cred.get_token(SCOPE).token == "token-1"
    assert cred.get_token("api://other/.default").token == "token-2"  # another key
    clock.now += 1799
    assert cred.get_token(SCOPE).token == "token-1"
    clock.now += 1
    assert cred.get_token(SCOPE).token == "token-3"  # half-life: refreshed
    assert server.issued == 3
    form = dict(httpx.QueryParams(server.requests[0].content.decode()))
    assert form == {"grant_type": "client_credentials", "scope": SCOPE, "client_id": "cid",
                    "client_secret": "the-client-secret"}


def test_refresh_in_from_the_server_is_honoured() -> None:
    server, clock = Server(), Clock()
    server.queue.append(httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3600, "refresh_in": 60,
                                                  "access_token": "short"}))
    cred = _credential(server, clock)
    info = cred.get_token_info(SCOPE)
    assert info.token == "short" and info.refresh_on == int(NOW + 60)
    clock.now += 61
    assert cred.get_token(SCOPE).token == "token-1"


def test_failed_refresh_keeps_serving_the_valid_token_then_fails_after_expiry() -> None:
    server, clock = Server(), Clock()
    cred = _credential(server, clock, retry_policy=RetryPolicy(max_retries=0))
    assert cred.get_token(SCOPE).token == "token-1"
    clock.now += 2000
    server.queue.append(httpx.Response(503, json={"error": "temporarily_unavailable"}))
    assert cred.get_token(SCOPE).token == "token-1"  # refresh failed: still valid, served
    before = len(server.requests)
    assert cred.get_token(SCOPE).token == "token-1"  # and not retried on every call ...
    assert len(server.requests) == before
    clock.now += 30
    assert cred.get_token(SCOPE).token == "token-2"  # ... but 30 seconds later
    clock.now += 3600
    server.queue.append(httpx.Response(401, json={"error": "invalid_client"}))
    with pytest.raises(OAuthError):
        cred.get_token(SCOPE)  # expired: nothing to fall back on


def test_retries_429_with_retry_after_through_the_driver() -> None:
    server, clock = Server(), Clock()
    server.queue.append(httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "invalid_request"}))
    cred = _credential(server, clock)
    assert cred.get_token(SCOPE).token == "token-1"
    assert clock.now == NOW + 3


def test_transport_failures_become_token_request_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    cred = ClientSecretCredential("t1", "cid", "s", authority=AUTHORITY,
                                  http_client=httpx.Client(transport=httpx.MockTransport(refuse)))
    cred._sleep = lambda s: None
    with pytest.raises(TokenRequestError, match="ConnectError"):
        cred.get_token(SCOPE)


def test_claims_challenge_forces_a_new_token_and_tenant_must_match() -> None:
    server, clock = Server(), Clock()
    cred = _credential(server, clock)
    assert cred.get_token(SCOPE).token == "token-1"
    assert cred.get_token(SCOPE, claims='{"access_token":{}}').token == "token-2"
    assert cred.get_token_info(SCOPE, options={"claims": "{}"}).token == "token-3"
    assert cred.get_token(SCOPE, tenant_id="t1", enable_cae=True).token == "token-3"
    with pytest.raises(ValueError, match="tenant"):
        cred.get_token(SCOPE, tenant_id="other")
    with pytest.raises(ValueError, match="scope"):
        cred.get_token()


def test_repr_and_validation() -> None:
    cred = ClientSecretCredential("t1", "cid", "the-client-secret", authority=AUTHORITY + "/")
    with cred:
        assert repr(cred) == "ClientSecretCredential(tenant_id='t1', client_id='cid', authority='https://keyless.test')"
        assert "the-client-secret" not in repr(vars(cred))
        assert "the-client-secret" not in repr(cred.auth(SCOPE)) and "the-client-secret" not in repr(
            cred.requests_auth(SCOPE))
    with pytest.raises(ValueError, match="https"):
        ClientSecretCredential("t1", "cid", "s", authority="http://keyless.test")
    with pytest.raises(ValueError):
        ClientSecretCredential("t1", "cid", "", authority=AUTHORITY)


def test_access_token_without_azure_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_types, "_azure_classes", lambda: None)
    server, clock = Server(), Clock()
    token = _credential(server, clock).get_token(SCOPE)
    assert type(token) is AccessToken and token == ("token-1", int(NOW + 3600))
    assert "token-1" not in repr(token)
    info = _credential(server, clock).get_token_info(SCOPE)
    assert type(info) is token_types.AccessTokenInfo and info.refresh_on == int(NOW + 1800)


def test_access_token_is_azure_cores_when_installed() -> None:
    from azure.core.credentials import AccessToken as AzureAccessToken
    from azure.core.credentials import AccessTokenInfo as AzureAccessTokenInfo

    server, clock = Server(), Clock()
    cred = _credential(server, clock)
    assert type(cred.get_token(SCOPE)) is AzureAccessToken
    assert type(cred.get_token_info(SCOPE)) is AzureAccessTokenInfo


def test_httpx_adapter_flavours() -> None:
    server, clock = Server(), Clock()
    cred = _credential(server, clock)
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(api), auth=cred.auth(SCOPE)) as http:
        http.get("https://api.test/")
    assert seen == ["Bearer token-1"]


async def test_sync_adapter_refuses_async_clients() -> None:
    cred = _credential(Server(), Clock())
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)),
                                 auth=cred.auth(SCOPE)) as http:
        with pytest.raises(RuntimeError, match="synchronous"):
            await http.get("https://api.test/")


# -- async ------------------------------------------------------------------------------------------------


async def test_async_credential_refresh_and_stale_serving() -> None:
    server, clock = Server(), Clock()
    cred = aio.ClientSecretCredential("t1", "cid", "the-client-secret", authority=AUTHORITY,
                                      http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
                                      retry_policy=RetryPolicy(max_retries=0))
    cred._clock = clock
    assert (await cred.get_token(SCOPE)).token == "token-1"
    clock.now += 1800
    server.queue.append(httpx.Response(500))
    assert (await cred.get_token(SCOPE)).token == "token-1"
    clock.now += 30
    assert (await cred.get_token(SCOPE)).token == "token-2"
    assert "the-client-secret" not in repr(cred)
    await cred.close()
    await cred._http.aclose()


async def test_async_adapter_and_sync_client() -> None:
    server = Server()
    async with aio.ClientSecretCredential("t1", "cid", "s", authority=AUTHORITY,
                                          http_client=httpx.AsyncClient(transport=httpx.MockTransport(server))) as c:
        async with httpx.AsyncClient(transport=httpx.MockTransport(
                lambda r: httpx.Response(200, text=r.headers["Authorization"])), auth=c.auth(SCOPE)) as http:
            assert (await http.get("https://api.test/")).text == "Bearer token-1"
        with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)), auth=c.auth(SCOPE)) as sync, \
                pytest.raises(RuntimeError, match="asynchronous"):
            sync.get("https://api.test/")
        await c._http.aclose()


# -- certificate files ------------------------------------------------------------------------------------


@pytest.fixture
def pem_files(tmp_path: Path) -> tuple[Path, Path]:
    key = generate_client_key("p256")
    cert = tmp_path / "c.pem"
    cert.write_bytes(self_signed_certificate(key, "w", now=NOW))
    keyfile = tmp_path / "c.key"
    keyfile.write_bytes(private_key_pem(key))
    return cert, keyfile


def test_certificate_credential_sends_an_assertion_for_the_discovered_issuer(pem_files: tuple[Path, Path]) -> None:
    import jwt

    cert, key = pem_files
    server = Server()
    cred = CertificateCredential("t1", "cid", certificate_path=cert, private_key_path=key, authority=AUTHORITY,
                                 http_client=httpx.Client(transport=httpx.MockTransport(server)))
    cred.get_token(SCOPE)
    cred.get_token("api://b/.default")
    assert [r.method for r in server.requests] == ["GET", "POST", "POST"]  # discovery once
    forms = [dict(httpx.QueryParams(r.content.decode())) for r in server.requests[1:]]
    claims = [jwt.decode(f["client_assertion"], options={"verify_signature": False}) for f in forms]
    assert all(c["aud"] == f"{AUTHORITY}/t1/v2.0" and c["iss"] == c["sub"] == "cid" for c in claims)
    assert claims[0]["jti"] != claims[1]["jti"]
    assert "PRIVATE" not in repr(vars(cred))


def test_load_certificate_files(pem_files: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = pem_files
    both = tmp_path / "both.pem"
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    assert load_certificate_files(both)[1] == load_certificate_files(cert, key)[1]
    with pytest.raises(CredentialError, match="no PEM private key"):
        load_certificate_files(cert)
    garbage = tmp_path / "c.pfx"
    garbage.write_bytes(b"\x30\x82\x01\x00binary")
    with pytest.raises(CredentialError, match="not a PKCS#12 file"):
        load_certificate_files(garbage)
    other = tmp_path / "other.key"
    other.write_bytes(private_key_pem(generate_client_key("p256")))
    with pytest.raises(CredentialError, match="does not belong"):
        load_certificate_files(cert, other)
    with pytest.raises(CredentialError, match="cannot read"):
        load_certificate_files(tmp_path / "missing.pem")


def test_load_pkcs12_bundle(pem_files: tuple[Path, Path], tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    cert_path, key_path = pem_files
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    pfx = tmp_path / "worker.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(
        b"worker", key, cert, None, serialization.BestAvailableEncryption(b"pw")))  # type: ignore[arg-type]
    loaded_key, loaded_pem = load_certificate_files(pfx, password="pw")
    assert x509.load_pem_x509_certificate(loaded_pem) == cert
    assert loaded_key.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    with pytest.raises(CredentialError, match="password is wrong"):
        load_certificate_files(pfx, password="wrong")
    with pytest.raises(CredentialError, match="password is wrong"):  # encrypted, none given
        load_certificate_files(pfx)
    with pytest.raises(CredentialError, match="no key file"):
        load_certificate_files(pfx, key_path)
