"""Keyless's own credentials (`keyless.client`) satisfy azure-core's token-credential protocol: an
unmodified Azure SDK client — `azure-keyvault-secrets` against the Keyless vault — uses them as is,
sync and async, including the vault's challenge (tenant, CAE claims) and its token scope."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient

from keyless.client import CertificateCredential, ClientSecretCredential
from keyless.client.aio import ClientSecretCredential as AsyncClientSecretCredential
from keyless.crypto.client_keys import generate_client_key, private_key_pem, self_signed_certificate
from tests.support.certs import register
from tests.support.server import Admin, RunningServer
from tests.support.vault import new_user, new_vault, resolve_localhost_names


@pytest.fixture(autouse=True)
def _localhost_names(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_localhost_names(monkeypatch)


def test_secret_client_with_keyless_client_secret_credential(server: RunningServer) -> None:
    with Admin(server) as admin:
        vault = new_vault(admin)
        user = new_user(admin, vault)
    with ClientSecretCredential(server.tenant_id, user.client_id, user.secret, authority=server.url,
                                ca=server.ca) as credential, \
            SecretClient(f"https://{vault}.vault.localhost:{server.vault_port}", credential,
                         connection_verify=server.ca) as client:
        client.set_secret("sdk", "from-keyless-credential")
        assert client.get_secret("sdk").value == "from-keyless-credential"


def test_secret_client_with_keyless_certificate_credential(server: RunningServer, tmp_path: Path) -> None:
    key = generate_client_key("p256")
    cert = self_signed_certificate(key, "sdk-vault", now=time.time())
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "c.key").write_bytes(private_key_pem(key))
    with Admin(server) as admin:
        vault = new_vault(admin)
        user = new_user(admin, vault)
        register(server, admin, user.client_id, cert)
    with CertificateCredential(server.tenant_id, user.client_id, certificate_path=tmp_path / "c.pem",
                               private_key_path=tmp_path / "c.key", authority=server.url, ca=server.ca) as credential, \
            SecretClient(f"https://{vault}.vault.localhost:{server.vault_port}", credential,
                         connection_verify=server.ca) as client:
        client.set_secret("cert", "v")
        assert [p.name for p in client.list_properties_of_secrets()] == ["cert"]


async def test_async_secret_client_with_keyless_credential(server: RunningServer) -> None:
    with Admin(server) as admin:
        vault = new_vault(admin)
        user = new_user(admin, vault)
    async with AsyncClientSecretCredential(server.tenant_id, user.client_id, user.secret, authority=server.url,
                                           ca=server.ca) as credential, \
            AsyncSecretClient(f"https://{vault}.vault.localhost:{server.vault_port}", credential,
                              connection_verify=server.ca) as client:
        await client.set_secret("async-sdk", "v")
        assert (await client.get_secret("async-sdk")).value == "v"
