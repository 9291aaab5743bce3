"""A Backup-only role on one secret never becomes its plaintext in a vault the caller controls (issue 11
item 7, docs/security.md "Backups are bound to where they came from"): the blob restores into its own
vault, or elsewhere only while the caller may also read the secret there. Against a real server over
TLS: the Key Vault-compatible port (Key Vault error JSON), the native API (problem+json) and the CLI."""

from __future__ import annotations

import os
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.server import Admin, RunningServer, cli_command
from tests.support.vault import VaultHttp, VaultUser, grant, new_user, new_vault, vault_token

VALUE = "origin-bound-plaintext-5c1d"
FOREIGN = ("the backup comes from another vault: restoring it here needs Secrets.Backup and Secrets.Get on "
           "the secret in the vault it came from")


@dataclass
class Scene:
    origin: str  # the victim's vault, holding `secret`
    mine: str  # a vault the attacker controls (Secrets.Officer)
    secret: str
    attacker: VaultUser
    attacker_token: str


@pytest.fixture(scope="module")
def scene(server: RunningServer) -> Iterator[Scene]:
    with Admin(server) as admin:
        origin, mine = new_vault(admin), new_vault(admin)
        owner = new_user(admin, origin)
        attacker = new_user(admin, mine)
        secret = f"db-{uuid.uuid4().hex[:6]}"
        grant(admin, origin, attacker, ("Secrets.Backup",), secret=secret)
        admin.grant(attacker.client_id, "urn:keyless:management", "Keyless.Reader")  # for the native API
    with VaultHttp(server, origin, vault_token(server, owner)) as kv:
        assert kv.request("PUT", f"/secrets/{secret}", json={"value": VALUE}).status_code == 200
    yield Scene(origin, mine, secret, attacker, vault_token(server, attacker))


def test_backup_only_role_cannot_restore_into_own_vault_on_the_key_vault_port(server: RunningServer,
                                                                              scene: Scene) -> None:
    with VaultHttp(server, scene.origin, scene.attacker_token) as kv:
        backup = kv.request("POST", f"/secrets/{scene.secret}/backup")
        assert backup.status_code == 200
    with VaultHttp(server, scene.mine, scene.attacker_token) as kv:
        refused = kv.request("POST", "/secrets/restore", json={"value": backup.json()["value"]})
        assert refused.status_code == 403
        assert refused.json() == {"error": {"code": "Forbidden", "message": FOREIGN}}
        assert VALUE not in refused.text
        assert kv.request("GET", f"/secrets/{scene.secret}").status_code == 404  # nothing was restored


def _native(server: RunningServer, token: str) -> tuple[httpx.Client, dict[str, str], str]:
    http = httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=10)
    return http, {"Authorization": f"Bearer {token}"}, f"{server.url}/{server.tenant_id}/manage/v1/vaults"


def _management_token(server: RunningServer, user: VaultUser) -> str:
    with httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=10) as http:
        resp = http.post(server.token_endpoint, data={
            "grant_type": "client_credentials", "client_id": user.client_id, "client_secret": user.secret,
            "scope": "urn:keyless:management/.default"})
    resp.raise_for_status()
    return str(resp.json()["access_token"])


def test_backup_only_role_cannot_restore_into_own_vault_on_the_native_api(server: RunningServer,
                                                                          scene: Scene) -> None:
    http, auth, base = _native(server, _management_token(server, scene.attacker))
    with http:
        backup = http.post(f"{base}/{scene.origin}/secrets/{scene.secret}/backup", headers=auth)
        assert backup.status_code == 200
        refused = http.post(f"{base}/{scene.mine}/restore", json=backup.json(), headers=auth)
        assert (refused.status_code, refused.headers["content-type"]) == (403, "application/problem+json")
        assert refused.json() == {"type": "urn:keyless:problem:vault_backup_from_another_vault",
                                  "title": "Forbidden", "status": 403, "detail": FOREIGN,
                                  "code": "vault_backup_from_another_vault"}
        assert http.get(f"{base}/{scene.mine}/secrets/{scene.secret}", headers=auth).status_code == 404


def test_backup_only_role_cannot_restore_into_own_vault_with_the_cli(server: RunningServer, scene: Scene) -> None:
    env = {**os.environ, "KEYLESS_DATA_DIR": str(server.data_dir), "KEYLESS_ADMIN_CLIENT_ID": scene.attacker.client_id,
           "KEYLESS_ADMIN_CLIENT_SECRET": scene.attacker.secret}

    def keyless(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cli_command(*args), env=env, capture_output=True, text=True, input=stdin, timeout=60)

    backup = keyless("vault", "secret", "backup", scene.origin, scene.secret)
    assert backup.returncode == 0, backup.stderr
    refused = keyless("vault", "secret", "restore", scene.mine, stdin=backup.stdout)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [f"error: {FOREIGN} (vault_backup_from_another_vault)"]
    assert VALUE not in refused.stdout + refused.stderr


def test_reader_of_the_origin_may_restore_its_backup_into_another_vault(server: RunningServer) -> None:
    with Admin(server) as admin:
        origin, other = new_vault(admin), new_vault(admin)
        user = new_user(admin, origin)  # Secrets.Officer: Get and Backup included
        grant(admin, other, user, ("Secrets.Officer",))
    token = vault_token(server, user)
    with VaultHttp(server, origin, token) as kv:
        kv.request("PUT", "/secrets/moved", json={"value": "v"})
        blob = kv.request("POST", "/secrets/moved/backup").json()["value"]
    with VaultHttp(server, other, token) as kv:
        assert kv.request("POST", "/secrets/restore", json={"value": blob}).status_code == 200
        assert kv.request("GET", "/secrets/moved").json()["value"] == "v"
