"""`keyless.client.WorkloadIdentityCredential` (sync and async) against a real server and a real external issuer."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyless.client import WorkloadIdentityCredential
from keyless.client._base import read_token_file
from keyless.client.aio import WorkloadIdentityCredential as AsyncWorkloadIdentityCredential
from keyless.client.assertions import CredentialError
from tests.security.support import jwt_claims
from tests.support.issuer import ExternalIssuer, federated_app
from tests.support.server import Admin, RunningServer

SUBJECT = "system:serviceaccount:prod:orders"


def test_token_file_is_read_for_each_request(fed_server: RunningServer, issuer: ExternalIssuer,
                                             tmp_path: Path) -> None:
    with Admin(fed_server) as admin:
        app = federated_app(admin, issuer.issuer, SUBJECT, replay="jti")
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token(SUBJECT) + "\n")
    with WorkloadIdentityCredential(tenant_id=fed_server.tenant_id, client_id=app.client_id,
                                    token_file_path=token_file, authority=fed_server.url, ca=fed_server.ca) as cred:
        first = cred.get_token(app.scope)
        assert jwt_claims(first.token)["sub"] == app.object_id
        assert cred.get_token(app.scope).token == first.token  # cached
        token_file.write_text(issuer.token(SUBJECT))  # the platform rotates the file in place
        second = cred.get_token(app.scope, claims="{}")  # a claims challenge forces a new request
    assert second.token != first.token  # single-use credential: only a re-read file could succeed


def test_environment_configuration(monkeypatch: pytest.MonkeyPatch, fed_server: RunningServer,
                                   issuer: ExternalIssuer, tmp_path: Path) -> None:
    with Admin(fed_server) as admin:
        app = federated_app(admin, issuer.issuer, SUBJECT)
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token(SUBJECT))
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_CLIENT_ID", app.client_id)
    monkeypatch.setenv("AZURE_TENANT_ID", fed_server.tenant_id)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", fed_server.url.removeprefix("https://"))
    with WorkloadIdentityCredential(ca=fed_server.ca) as cred:
        assert jwt_claims(cred.get_token(app.scope).token)["appid"] == app.client_id


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="workload identity needs token_file_path"):
        WorkloadIdentityCredential(tenant_id="t", client_id="c", authority="https://127.0.0.1:1")
    empty = tmp_path / "empty"
    empty.write_text("not a token")
    with WorkloadIdentityCredential(tenant_id="t", client_id="c", token_file_path=empty,
                                    authority="https://127.0.0.1:1") as cred, \
            pytest.raises(CredentialError, match="does not hold a compact JWT"):
        read_token_file(cred.token_file)


async def test_async_credential(fed_server: RunningServer, issuer: ExternalIssuer, tmp_path: Path) -> None:
    with Admin(fed_server) as admin:
        app = federated_app(admin, issuer.issuer, SUBJECT)
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token(SUBJECT))
    cred = AsyncWorkloadIdentityCredential(tenant_id=fed_server.tenant_id, client_id=app.client_id,
                                           token_file_path=token_file, authority=fed_server.url, ca=fed_server.ca)
    try:
        token = await cred.get_token(app.scope)
    finally:
        await cred.close()
    assert jwt_claims(token.token)["sub"] == app.object_id
