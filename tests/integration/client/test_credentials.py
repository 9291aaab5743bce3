"""`keyless.client` credentials against a real Keyless server over TLS."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyless.client import CertificateCredential, ClientSecretCredential, OAuthError, aio
from keyless.verify import TokenValidator
from keyless.verify.claims import AccessToken as Claims
from tests.integration.client.conftest import App, certificate_app, reader_app, secret_app
from tests.support.server import Admin, RunningServer


def _validate(app: App, token: str) -> Claims:
    with app.server.http() as http:
        validator = TokenValidator(issuer=app.server.issuer, audience=app.resource, algorithms=["RS256"], http=http)
        return validator.validate(token)


def _secret_credential(app: App, **kwargs: Any) -> ClientSecretCredential:
    assert app.secret is not None
    return ClientSecretCredential(app.server.tenant_id, app.client_id, app.secret, authority=app.server.url,
                                  ca=app.server.ca, **kwargs)


def _cert_credential(app: App, **kwargs: Any) -> CertificateCredential:
    assert app.certificate is not None
    return CertificateCredential(app.server.tenant_id, app.client_id, certificate_path=app.certificate,
                                 private_key_path=app.key, authority=app.server.url, ca=app.server.ca, **kwargs)


class CountingTransport(httpx.HTTPTransport):
    """Counts token requests on their way to the server."""

    def __init__(self, ca: str) -> None:
        super().__init__(verify=ssl.create_default_context(cafile=ca))
        self.token_requests = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/oauth2/v2.0/token"):
            with self._lock:
                self.token_requests += 1
        return super().handle_request(request)


class AsyncCountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self, ca: str) -> None:
        super().__init__(verify=ssl.create_default_context(cafile=ca))
        self.token_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/oauth2/v2.0/token"):
            self.token_requests += 1
        return await super().handle_async_request(request)


def _signins(srv: RunningServer, client_id: str) -> list[dict[str, Any]]:
    with Admin(srv) as admin:
        return list(admin.api.call("GET", "/logs/signins", params={"client_id": client_id}))


# -- tokens that validate ----------------------------------------------------------------------------------


def test_secret_credential_gets_a_token_that_validates_and_is_cached(secret_client: App) -> None:
    with _secret_credential(secret_client) as cred:
        first = cred.get_token(secret_client.scope)
        again = cred.get_token(secret_client.scope)
        info = cred.get_token_info(secret_client.scope)
    claims = _validate(secret_client, first.token)
    assert claims.claims["appid"] == secret_client.client_id and claims.claims["roles"] == ["Data.Read"]
    assert claims.claims["azpacr"] == "1"
    assert again.token == first.token == info.token and again.expires_on == first.expires_on
    assert info.refresh_on is not None and first.expires_on - 3600 < info.refresh_on < first.expires_on


def test_certificate_credential_gets_a_token_that_validates(cert_client: App) -> None:
    with _cert_credential(cert_client) as cred:
        token = cred.get_token(cert_client.scope)
    claims = _validate(cert_client, token.token)
    assert claims.claims["appid"] == cert_client.client_id and claims.claims["azpacr"] == "2"


def test_certificate_credential_in_strict_mode_with_one_pem_file_and_x5c(sqlite_server: RunningServer,
                                                                         tmp_path: Path) -> None:
    """aud = issuer works in strict mode too; key and certificate may share one PEM file; x5c is accepted."""
    app = certificate_app(sqlite_server, tmp_path, kind="p256")
    assert app.certificate is not None and app.key is not None
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(app.key.read_bytes() + app.certificate.read_bytes())
    with Admin(sqlite_server) as admin:
        before = admin.api.call("GET", "/tenant")["assertion_audience"]
        admin.api.call("PATCH", "/tenant", json_body={"assertion_audience": "strict"})
    try:
        for send_chain in (False, True):
            with CertificateCredential(sqlite_server.tenant_id, app.client_id, certificate_path=bundle,
                                       authority=sqlite_server.url, ca=sqlite_server.ca,
                                       send_certificate_chain=send_chain) as cred:
                assert _validate(app, cred.get_token(app.scope).token).claims["azpacr"] == "2"
    finally:
        with Admin(sqlite_server) as admin:
            admin.api.call("PATCH", "/tenant", json_body={"assertion_audience": before})


async def test_async_credentials_get_tokens_that_validate(server: RunningServer, tmp_path: Path) -> None:
    secret, cert = secret_app(server), certificate_app(server, tmp_path)
    assert secret.secret is not None
    async with aio.ClientSecretCredential(server.tenant_id, secret.client_id, secret.secret, authority=server.url,
                                          ca=server.ca) as scred:
        s_token = await scred.get_token(secret.scope)
        assert (await scred.get_token_info(secret.scope)).token == s_token.token
    async with aio.CertificateCredential(server.tenant_id, cert.client_id, certificate_path=str(cert.certificate),
                                         private_key_path=str(cert.key), authority=server.url,
                                         ca=server.ca) as ccred:
        c_token = await ccred.get_token(cert.scope)
    assert _validate(secret, s_token.token).claims["azpacr"] == "1"
    assert _validate(cert, c_token.token).claims["azpacr"] == "2"


# -- one request under concurrency -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["secret", "certificate"])
def test_100_concurrent_threads_make_one_token_request(sqlite_server: RunningServer, tmp_path: Path,
                                                       kind: str) -> None:
    app = secret_app(sqlite_server) if kind == "secret" else certificate_app(sqlite_server, tmp_path)
    transport = CountingTransport(sqlite_server.ca)
    barrier = threading.Barrier(100)
    with httpx.Client(transport=transport) as http:
        cred = _secret_credential(app, http_client=http) if kind == "secret" else _cert_credential(
            app, http_client=http)

        def call(_: int) -> str:
            barrier.wait()
            return cred.get_token(app.scope).token

        with ThreadPoolExecutor(max_workers=100) as pool:
            tokens = set(pool.map(call, range(100)))
    assert len(tokens) == 1 and transport.token_requests == 1
    assert [e["result"] for e in _signins(sqlite_server, app.client_id)] == ["success"]


async def test_100_concurrent_tasks_make_one_token_request(sqlite_server: RunningServer) -> None:
    app = secret_app(sqlite_server)
    assert app.secret is not None
    transport = AsyncCountingTransport(sqlite_server.ca)
    async with httpx.AsyncClient(transport=transport) as http:
        cred = aio.ClientSecretCredential(sqlite_server.tenant_id, app.client_id, app.secret,
                                          authority=sqlite_server.url, http_client=http)
        tokens = await asyncio.gather(*(cred.get_token(app.scope) for _ in range(100)))
        await cred.close()
    assert len({t.token for t in tokens}) == 1 and transport.token_requests == 1
    assert [e["result"] for e in _signins(sqlite_server, app.client_id)] == ["success"]


# -- failures and secrets ----------------------------------------------------------------------------------


def test_wrong_secret_is_invalid_client_and_never_shows_the_secret(secret_client: App) -> None:
    wrong = "wrong-" + "s3cr3t-value-that-must-not-leak"
    with ClientSecretCredential(secret_client.server.tenant_id, secret_client.client_id, wrong,
                                authority=secret_client.server.url, ca=secret_client.server.ca) as cred:
        assert wrong not in repr(cred) and wrong not in str(vars(cred).get("_auth"))
        with pytest.raises(OAuthError) as caught:
            cred.get_token(secret_client.scope)
    err = caught.value
    assert err.error == "invalid_client" and err.status == 401
    for text in (str(err), repr(err), repr(err.args)):
        assert wrong not in text
    assert "invalid_client" in str(err)


async def test_wrong_secret_async(sqlite_server: RunningServer) -> None:
    app = secret_app(sqlite_server)
    async with aio.ClientSecretCredential(sqlite_server.tenant_id, app.client_id, "not-the-secret",
                                          authority=sqlite_server.url, ca=sqlite_server.ca) as cred:
        with pytest.raises(OAuthError) as caught:
            await cred.get_token(app.scope)
    assert caught.value.error == "invalid_client" and "not-the-secret" not in str(caught.value)


def test_debug_logs_never_contain_the_secret_or_the_key(sqlite_server: RunningServer, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    secret, cert = secret_app(sqlite_server), certificate_app(sqlite_server, tmp_path)
    assert secret.secret is not None and cert.key is not None
    caplog.set_level(logging.DEBUG)
    with _secret_credential(secret) as s, _cert_credential(cert) as c:
        s_token = s.get_token(secret.scope).token
        c_token = c.get_token(cert.scope).token
        with ClientSecretCredential(sqlite_server.tenant_id, secret.client_id, secret.secret + "x",
                                    authority=sqlite_server.url, ca=sqlite_server.ca) as wrong, \
                pytest.raises(OAuthError):
            wrong.get_token(secret.scope)
        logging.getLogger("test").debug("credentials: %r %r", s, c)
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "requesting a token" in text  # the client did log at DEBUG
    key_body = cert.key.read_text().splitlines()[1]
    for leak in (secret.secret, key_body, "PRIVATE KEY", "client_assertion=", s_token, c_token):
        assert leak not in text


# -- adapters and the Azure SDK ----------------------------------------------------------------------------


def test_azure_core_bearer_policy_accepts_the_credential(reader: App) -> None:
    from azure.core.pipeline import Pipeline
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy
    from azure.core.pipeline.transport import RequestsTransport
    from azure.core.rest import HttpRequest

    srv = reader.server
    with _secret_credential(reader) as cred:
        policy = BearerTokenCredentialPolicy(cred, "urn:keyless:management/.default")
        with Pipeline(transport=RequestsTransport(connection_verify=srv.ca), policies=[policy]) as pipeline:
            response = pipeline.run(HttpRequest("GET", f"{srv.url}/{srv.tenant_id}/manage/v1/tenant")).http_response
            assert response.status_code == 200
            assert response.json()["id"] == srv.tenant_id


def test_httpx_and_requests_adapters(reader: App) -> None:
    import requests

    srv = reader.server
    url = f"{srv.url}/{srv.tenant_id}/manage/v1/tenant"
    with _secret_credential(reader) as cred:
        with httpx.Client(verify=ssl.create_default_context(cafile=srv.ca), auth=cred.auth(reader.scope)) as http:
            assert http.get(url).status_code == 200
        with httpx.Client(verify=ssl.create_default_context(cafile=srv.ca)) as http:
            assert http.get(url).status_code == 401  # the adapter is what makes it work
        with requests.Session() as session:
            resp = session.get(url, auth=cred.requests_auth(reader.scope), verify=srv.ca)
            assert resp.status_code == 200


async def test_async_httpx_adapter(sqlite_server: RunningServer) -> None:
    app = reader_app(sqlite_server)
    assert app.secret is not None
    url = f"{sqlite_server.url}/{sqlite_server.tenant_id}/manage/v1/tenant"
    cred = aio.ClientSecretCredential(sqlite_server.tenant_id, app.client_id, app.secret,
                                      authority=sqlite_server.url, ca=sqlite_server.ca)
    async with cred, httpx.AsyncClient(verify=ssl.create_default_context(cafile=sqlite_server.ca),
                                       auth=cred.auth(app.scope)) as http:
        assert (await http.get(url)).status_code == 200


async def test_azure_core_async_bearer_policy_accepts_the_async_credential(sqlite_server: RunningServer) -> None:
    from azure.core.pipeline import AsyncPipeline
    from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy
    from azure.core.pipeline.transport import AioHttpTransport
    from azure.core.rest import HttpRequest

    app = reader_app(sqlite_server)
    assert app.secret is not None
    url = f"{sqlite_server.url}/{sqlite_server.tenant_id}/manage/v1/tenant"
    cred = aio.ClientSecretCredential(sqlite_server.tenant_id, app.client_id, app.secret,
                                      authority=sqlite_server.url, ca=sqlite_server.ca)
    policy = AsyncBearerTokenCredentialPolicy(cred, "urn:keyless:management/.default")
    async with cred, AsyncPipeline(transport=AioHttpTransport(connection_verify=sqlite_server.ca),
                                   policies=[policy]) as pipeline:
        response = (await pipeline.run(HttpRequest("GET", url))).http_response
        assert response.status_code == 200
