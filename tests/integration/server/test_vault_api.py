"""The Key Vault-compatible API over HTTPS against a real server (both storage backends): vault
addressing, the challenge, tokens, JSON shapes, paging, errors, and the audit trail of reads."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.server import Admin, RunningServer
from tests.support.vault import VaultHttp, new_user, new_vault, vault_token


@pytest.fixture
def vault(admin: Admin) -> str:
    return new_vault(admin)


def test_no_token_gets_the_challenge_azure_clients_need(server: RunningServer, vault: str) -> None:
    with VaultHttp(server, vault) as kv:
        resp = kv.request("PUT", "/secrets/x", json={"value": "v"})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == (
        f'Bearer authorization="{server.url}/{server.tenant_id}", resource="{server.vault_resource}"')
    assert resp.json() == {"error": {"code": "Unauthorized",
                                     "message": "AKV10000: Request is missing a Bearer token."}}
    assert resp.headers["cache-control"] == "no-store"


def test_a_token_for_another_resource_is_refused_with_the_challenge(server: RunningServer, admin: Admin,
                                                                     vault: str) -> None:
    token = admin.api.token()  # the management API's audience, not the vault's
    with VaultHttp(server, vault, token) as kv:
        resp = kv.request("GET", "/secrets")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].endswith(', error="invalid_token"')
    assert resp.json()["error"]["code"] == "Unauthorized"


def test_unknown_vault_is_404_before_any_challenge(server: RunningServer) -> None:
    with VaultHttp(server, "nosuchvault") as kv:
        resp = kv.request("GET", "/secrets")
    assert resp.status_code == 404
    assert resp.json() == {"error": {"code": "VaultNotFound", "message": "no such vault"}}


def test_round_trip_by_host_name_with_ids_on_that_host(server: RunningServer, admin: Admin, vault: str) -> None:
    user = new_user(admin, vault)
    with VaultHttp(server, vault, vault_token(server, user)) as kv:
        put = kv.request("PUT", "/secrets/db-password", json={"value": "hunter2", "contentType": "text/plain",
                                                              "tags": {"env": "dev"},
                                                              "attributes": {"enabled": True, "exp": 4102444800}})
        assert put.status_code == 200, put.text
        body = put.json()
        version = body["id"].rsplit("/", 1)[1]
        assert body["id"] == f"https://{vault}.vault.localhost:{server.vault_port}/secrets/db-password/{version}"
        assert body["value"] == "hunter2" and body["contentType"] == "text/plain" and body["tags"] == {"env": "dev"}
        attrs = body["attributes"]
        assert attrs["enabled"] is True and attrs["exp"] == 4102444800
        assert attrs["recoveryLevel"] == "Recoverable+Purgeable" and attrs["recoverableDays"] == 90
        assert isinstance(attrs["created"], int) and attrs["created"] == attrs["updated"]
        latest = kv.request("GET", "/secrets/DB-PASSWORD/")  # trailing slash = latest; names ignore case
        assert latest.status_code == 200 and latest.json()["value"] == "hunter2"
        assert latest.headers["cache-control"] == "no-store"
        same = kv.request("GET", f"/secrets/db-password/{version}")
        assert same.json()["id"] == body["id"]
        patched = kv.request("PATCH", "/secrets/db-password/", json={"tags": {"env": "prod"}})
        assert patched.status_code == 200 and "value" not in patched.json()
        assert patched.json()["tags"] == {"env": "prod"}


def test_paging_with_next_links_the_client_can_follow(server: RunningServer, admin: Admin, vault: str) -> None:
    user = new_user(admin, vault)
    with VaultHttp(server, vault, vault_token(server, user)) as kv:
        for i in range(5):
            assert kv.request("PUT", f"/secrets/p{i}", json={"value": "x"}).status_code == 200
        names, path = [], "/secrets?maxresults=2"
        while path:
            page = kv.request("GET", path).json()
            assert all("value" not in item for item in page["value"])
            names += [item["id"].rsplit("/", 1)[1] for item in page["value"]]
            link = page["nextLink"]
            path = link.split(str(server.vault_port), 1)[1].replace("api-version=7.6&", "") if link else ""
        assert names == [f"p{i}" for i in range(5)]


def test_api_version_is_required(server: RunningServer, admin: Admin, vault: str) -> None:
    with VaultHttp(server, vault) as kv:
        resp = kv.request("GET", "/secrets", api=None)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "BadParameter"


def test_remembered_requests_are_still_checked_each_time(server: RunningServer, admin: Admin, vault: str) -> None:
    # Accepted routes, hosts and api-versions are remembered (issue 18 item 4); a bad api-version is
    # refused every time, and a good query after it still works, with or without a token.
    user = new_user(admin, vault)
    with VaultHttp(server, vault, vault_token(server, user)) as kv:
        for _ in range(3):
            assert kv.request("GET", "/secrets", api="api-version=0.0.0").status_code == 400
            assert kv.request("GET", "/secrets").status_code == 200
            assert kv.request("GET", "/secrets", auth=False).status_code == 401


@pytest.mark.parametrize(("path", "body"), [
    ("/vaults/nosuchvault/secrets", {"error": {"code": "VaultNotFound", "message": "no such vault"}}),
    ("/vaults/", {"error": {"code": "NotFound", "message": "no such operation"}}),
    ("/vaults/x", {"error": {"code": "NotFound", "message": "no such operation"}}),
])
def test_vault_by_path_refuses_unknown_vaults_and_bare_prefixes(server: RunningServer, path: str,
                                                                 body: dict[str, object]) -> None:
    with VaultHttp(server, None) as kv:
        resp = kv.request("GET", path)
    assert resp.status_code == 404 and resp.json() == body


def test_vault_by_path_ids_name_the_vault_and_links_keep_the_path(server: RunningServer, admin: Admin,
                                                                  vault: str) -> None:
    user = new_user(admin, vault)
    with VaultHttp(server, None, vault_token(server, user)) as kv:
        made = kv.request("PUT", f"/vaults/{vault}/secrets/one", json={"value": "v"}).json()
        kv.request("PUT", f"/vaults/{vault}/secrets/two", json={"value": "v"})
        page = kv.request("GET", f"/vaults/{vault}/secrets?maxresults=1").json()
    assert made["id"].startswith(f"https://{vault}.vault.localhost:{server.vault_port}/secrets/one/")
    assert page["nextLink"].startswith(f"https://127.0.0.1:{server.vault_port}/vaults/{vault}/secrets?")


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("POST", "/secrets/x", 405, "MethodNotAllowed"),
    ("GET", "/keys/x", 404, "NotFound"),
    ("GET", "/secrets/a/b/c", 404, "NotFound"),
])
def test_unknown_operations(server: RunningServer, admin: Admin, vault: str, method: str, path: str, status: int,
                            code: str) -> None:
    user = new_user(admin, vault)
    with VaultHttp(server, vault, vault_token(server, user)) as kv:
        resp = kv.request(method, path)
    assert resp.status_code == status and resp.json()["error"]["code"] == code


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "the body is not JSON"),
    (b"[]", "the body must be a JSON object"),
    (b'{"value": 5}', "value is required and must be a string"),
    (b'{"value": "x", "attributes": {"enabled": "yes"}}', "attributes.enabled must be true or false"),
    (b'{"value": "x", "attributes": {"exp": "soon"}}', "attributes.exp must be a Unix time in seconds"),
])
def test_bad_bodies_are_400_and_change_nothing(server: RunningServer, admin: Admin, vault: str, body: bytes,
                                               message: str) -> None:
    user = new_user(admin, vault)
    with VaultHttp(server, vault, vault_token(server, user)) as kv:
        resp = kv.http.put(f"https://127.0.0.1:{server.vault_port}/secrets/bad?api-version=7.6", content=body,
                           headers={"Host": kv.host, "Authorization": f"Bearer {kv.token}",
                                    "Content-Type": "application/json"},
                           extensions={"sni_hostname": kv.host.split(":")[0]})
        assert resp.status_code == 400
        assert resp.json() == {"error": {"code": "BadParameter", "message": message}}
        assert kv.request("GET", "/secrets").json()["value"] == []


def test_every_read_is_audited_with_who_and_which_version(server: RunningServer, admin: Admin, vault: str) -> None:
    user = new_user(admin, vault)
    with VaultHttp(server, vault, vault_token(server, user)) as kv:
        version = kv.request("PUT", "/secrets/audited", json={"value": "x"}).json()["id"].rsplit("/", 1)[1]
        assert kv.request("GET", "/secrets/audited/").status_code == 200
    events = []
    for _ in range(50):
        events = [e for e in admin.api.call("GET", "/logs/audit", params={"action": "vault.secret.get"})
                  if e["details"].get("vault") == vault]
        if events:
            break
        time.sleep(0.1)  # reads are audited in batches, off the request path
    [event] = events
    assert event["actor"] == user.client_id and event["target_id"] == "audited"
    assert event["details"]["version"] == version and event["details"]["principal"] == user.object_id
    [written] = [e for e in admin.api.call("GET", "/logs/audit", params={"action": "vault.secret.set"})
                 if e["details"].get("vault") == vault]
    assert written["details"]["version"] == version


def test_the_default_vault_is_served_at_the_port_root(server: RunningServer, admin: Admin) -> None:
    existing = {v["name"] for v in admin.api.call("GET", "/vaults")}
    if "default" not in existing:
        admin.api.call("POST", "/vaults", json_body={"name": "default"})
    user = new_user(admin, "default")
    name = f"d{uuid.uuid4().hex[:8]}"
    with VaultHttp(server, None, vault_token(server, user)) as kv:
        put = kv.request("PUT", f"/secrets/{name}", json={"value": "x"})
        assert put.status_code == 200
        assert put.json()["id"].startswith(f"https://127.0.0.1:{server.vault_port}/secrets/{name}/")
