"""Unmodified `azure-keyvault-secrets` `SecretClient` (sync and async) against a real Keyless vault,
every method, with Keyless credentials (compat §5).

Only configuration changes: the vault URL, `connection_verify` for the private CA, and — only where
the vault is addressed by IP — `verify_challenge_resource=False`. By host name
(`https://{vault}.vault.localhost:PORT`) the client's own challenge-resource check passes.
"""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import CertificateCredential, ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient

from tests.support.certs import new_cert, register
from tests.support.server import Admin, RunningServer
from tests.support.vault import VaultUser, new_user, new_vault

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")


def _credential(server: RunningServer, user: VaultUser) -> ClientSecretCredential:
    return ClientSecretCredential(server.tenant_id, user.client_id, user.secret, authority=server.url,
                                  disable_instance_discovery=True, connection_verify=server.ca)


def _by_name(server: RunningServer, vault: str, credential: object) -> SecretClient:
    return SecretClient(f"https://{vault}.vault.localhost:{server.vault_port}", credential,  # type: ignore[arg-type]
                        connection_verify=server.ca)


def test_every_method_by_host_name(server: RunningServer, admin: Admin) -> None:
    vault = new_vault(admin)
    user = new_user(admin, vault, ("Secrets.Officer", "Secrets.Purge"))
    client = _by_name(server, vault, _credential(server, user))

    first = client.set_secret("db-password", "hunter2", tags={"env": "dev"}, content_type="text/plain")
    assert first.value == "hunter2" and first.properties.tags == {"env": "dev"}
    assert first.properties.vault_url == f"https://{vault}.vault.localhost:{server.vault_port}"
    second = client.set_secret("db-password", "hunter3", enabled=True)
    assert client.get_secret("db-password").value == "hunter3"
    assert client.get_secret("db-password", first.properties.version).value == "hunter2"

    updated = client.update_secret_properties("db-password", first.properties.version, enabled=False,
                                              tags={"env": "old"})
    assert updated.enabled is False and updated.tags == {"env": "old"}
    with pytest.raises(HttpResponseError) as disabled:
        client.get_secret("db-password", first.properties.version)
    assert disabled.value.status_code == 403

    for i in range(3):
        client.set_secret(f"extra-{i}", "x")
    names = [p.name for p in client.list_properties_of_secrets(max_page_size=2)]
    assert names == ["db-password", "extra-0", "extra-1", "extra-2"]
    versions = {p.version for p in client.list_properties_of_secret_versions("db-password", max_page_size=1)}
    assert versions == {first.properties.version, second.properties.version}

    backup = client.backup_secret("db-password")
    deleted = client.begin_delete_secret("db-password").result()
    assert deleted.name == "db-password" and deleted.recovery_id and deleted.scheduled_purge_date
    assert client.get_deleted_secret("db-password").name == "db-password"
    assert [d.name for d in client.list_deleted_secrets()] == ["db-password"]
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("db-password")
    recovered = client.begin_recover_deleted_secret("db-password").result()
    assert recovered.version == second.properties.version
    assert client.get_secret("db-password").value == "hunter3"

    client.begin_delete_secret("db-password").result()
    client.purge_deleted_secret("db-password")
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("db-password")
    restored = client.restore_secret_backup(backup)
    assert restored.name == "db-password" and restored.version == second.properties.version
    old = [p for p in client.list_properties_of_secret_versions("db-password") if p.version == first.properties.version]
    assert old[0].tags == {"env": "old"} and old[0].enabled is False  # versions come back with their attributes
    with pytest.raises(ResourceExistsError):
        client.restore_secret_backup(backup)


def test_default_vault_by_ip_needs_only_verify_challenge_resource_off(server: RunningServer,
                                                                       admin: Admin) -> None:
    if "default" not in {v["name"] for v in admin.api.call("GET", "/vaults")}:
        admin.api.call("POST", "/vaults", json_body={"name": "default"})
    user = new_user(admin, "default")
    client = SecretClient(server.vault_url, _credential(server, user), connection_verify=server.ca,
                          verify_challenge_resource=False)
    name = f"ip-{uuid.uuid4().hex[:8]}"
    client.set_secret(name, "by-ip")
    assert client.get_secret(name).value == "by-ip"


def test_a_named_vault_by_ip_under_vaults_path(server: RunningServer, admin: Admin) -> None:
    """`https://127.0.0.1:PORT/vaults/{name}` reaches that vault, not the default one, where no name
    resolves (glibc without RFC 6761 `.localhost`); ids keep the host-name form the client parses."""
    vault = new_vault(admin)
    user = new_user(admin, vault, ("Secrets.Officer",))
    url = f"https://127.0.0.1:{server.vault_port}/vaults/{vault}"
    client = SecretClient(url, _credential(server, user), connection_verify=server.ca,
                          verify_challenge_resource=False)
    made = client.set_secret("by-path", "v1")
    assert made.properties.vault_url == f"https://{vault}.vault.localhost:{server.vault_port}"
    for i in range(3):
        client.set_secret(f"page-{i}", "x")
    names = [p.name for p in client.list_properties_of_secrets(max_page_size=2)]  # nextLink keeps the path
    assert names == ["by-path", "page-0", "page-1", "page-2"]
    assert client.get_secret("by-path").value == "v1"
    assert _by_name(server, vault, _credential(server, user)).get_secret("by-path").value == "v1"  # same vault
    client.begin_delete_secret("by-path").result()
    assert [d.name for d in client.list_deleted_secrets()] == ["by-path"]
    unknown = SecretClient(f"https://127.0.0.1:{server.vault_port}/vaults/no-such-vault", _credential(server, user),
                           connection_verify=server.ca, verify_challenge_resource=False)
    with pytest.raises(ResourceNotFoundError):
        unknown.get_secret("by-path")


def test_certificate_credential(server: RunningServer, admin: Admin, tmp_path: object) -> None:
    from pathlib import Path

    vault = new_vault(admin)
    user = new_user(admin, vault, ("Secrets.Reader", "Secrets.Set"))
    cert = new_cert()
    register(server, admin, user.client_id, cert)
    pem = Path(str(tmp_path)) / "client.pem"
    pem.write_bytes(cert.key_pem + cert.cert_pem)
    credential = CertificateCredential(server.tenant_id, user.client_id, str(pem), authority=server.url,
                                       disable_instance_discovery=True, connection_verify=server.ca)
    client = _by_name(server, vault, credential)
    client.set_secret("from-cert", "v")
    assert client.get_secret("from-cert").value == "v"


def test_grants_decide_reader_and_stranger(server: RunningServer, admin: Admin) -> None:
    vault = new_vault(admin)
    owner = new_user(admin, vault)
    _by_name(server, vault, _credential(server, owner)).set_secret("shared", "v")
    reader = _by_name(server, vault, _credential(server, new_user(admin, vault, ("Secrets.Reader",))))
    assert reader.get_secret("shared").value == "v"
    with pytest.raises(HttpResponseError) as refused:
        reader.set_secret("shared", "changed")
    assert refused.value.status_code == 403
    stranger = _by_name(server, vault, _credential(server, new_user(admin)))
    with pytest.raises(ResourceNotFoundError):
        stranger.get_secret("shared")


async def test_async_client(server: RunningServer, admin: Admin) -> None:
    vault = new_vault(admin)
    user = new_user(admin, vault)
    async with AsyncClientSecretCredential(server.tenant_id, user.client_id, user.secret, authority=server.url,
                                           disable_instance_discovery=True, connection_verify=server.ca) as cred, \
            AsyncSecretClient(f"https://{vault}.vault.localhost:{server.vault_port}", cred,
                              connection_verify=server.ca) as client:
        await client.set_secret("async-one", "v1")
        assert (await client.get_secret("async-one")).value == "v1"
        assert [p.name async for p in client.list_properties_of_secrets()] == ["async-one"]
        deleted = await client.delete_secret("async-one")
        assert deleted.name == "async-one"
