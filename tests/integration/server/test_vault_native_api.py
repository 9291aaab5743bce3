"""The native vault API under /{tenant}/manage/v1/vaults: problem details with stable codes, the
directory roles for vaults and grants, the vault's own grants for secrets, and the body cap."""

from __future__ import annotations

import uuid

import httpx

from tests.integration.server.conftest import client_for
from tests.support.server import Admin, RunningServer

PROBLEM = "application/problem+json"


def _manage(server: RunningServer, admin: Admin) -> tuple[httpx.Client, dict[str, str], str]:
    return client_for(server), {"Authorization": f"Bearer {admin.api.token()}"}, \
        f"{server.url}/{server.tenant_id}/manage/v1"


def test_problem_codes(server: RunningServer, admin: Admin) -> None:
    http, auth, base = _manage(server, admin)
    with http:
        bad = http.post(f"{base}/vaults", json={"name": "-bad-"}, headers=auth)
        assert bad.status_code == 400 and bad.headers["content-type"] == PROBLEM
        assert bad.json()["code"] == "vault_bad_parameter"
        missing = http.get(f"{base}/vaults/nosuchvault1", headers=auth)
        assert missing.status_code == 404 and missing.json()["code"] == "vault_not_found"
        name = f"n{uuid.uuid4().hex[:8]}"
        assert http.post(f"{base}/vaults", json={"name": name}, headers=auth).status_code == 201
        dup = http.post(f"{base}/vaults", json={"name": name.upper()}, headers=auth)
        assert dup.status_code == 409 and dup.json()["code"] == "vault_conflict"
        nothing = http.get(f"{base}/vaults/{name}/secrets/none", headers=auth)
        assert nothing.status_code == 404 and nothing.json()["code"] == "secret_not_found"
        unknown = http.post(f"{base}/vaults", json={"name": f"n{uuid.uuid4().hex[:8]}", "owner": "x"},
                            headers=auth)
        assert unknown.status_code == 400 and unknown.json()["code"] == "validation_failed"


def test_no_grant_self_means_the_creator_reads_nothing(server: RunningServer, admin: Admin) -> None:
    http, auth, base = _manage(server, admin)
    with http:
        name = f"n{uuid.uuid4().hex[:8]}"
        http.post(f"{base}/vaults", json={"name": name, "grant_self": False}, headers=auth)
        assert http.get(f"{base}/vaults/{name}/grants", headers=auth).json() == []
        put = http.put(f"{base}/vaults/{name}/secrets/a", json={"value": "x"}, headers=auth)
        assert put.status_code == 404 and put.json()["code"] == "secret_not_found"


def test_management_bodies_are_capped_before_they_are_read(server: RunningServer, admin: Admin) -> None:
    http, auth, base = _manage(server, admin)
    with http:
        resp = http.post(f"{base}/vaults", content=b"{" + b" " * (6 * 1024 * 1024) + b"}",
                         headers={**auth, "Content-Type": "application/json"})
        assert resp.status_code == 413 and resp.json()["code"] == "body_too_large"

        def chunks() -> object:
            for _ in range(700):
                yield b" " * 10240

        streamed = http.post(f"{base}/vaults", content=chunks(), headers={**auth, "Content-Type": "application/json"})
        assert streamed.status_code == 413 and streamed.json()["code"] == "body_too_large"


def test_reading_a_secret_needs_a_token_and_values_stay_out_of_listings(server: RunningServer,
                                                                        admin: Admin) -> None:
    http, auth, base = _manage(server, admin)
    with http:
        name = f"n{uuid.uuid4().hex[:8]}"
        http.post(f"{base}/vaults", json={"name": name}, headers=auth)
        http.put(f"{base}/vaults/{name}/secrets/s", json={"value": "the-value"}, headers=auth)
        assert http.get(f"{base}/vaults/{name}/secrets/s").status_code == 401
        assert "the-value" not in http.get(f"{base}/vaults/{name}/secrets", headers=auth).text
        assert http.get(f"{base}/vaults/{name}/secrets/s", headers=auth).json()["value"] == "the-value"


def test_a_refused_create_changes_nothing(fresh_server: RunningServer) -> None:
    with Admin(fresh_server) as admin:
        http, auth, base = _manage(fresh_server, admin)
        with http:
            before = http.get(f"{base}/applications", headers=auth).json()
            for body in ({"name": "ok-name", "retention_days": 3}, {"name": "-bad-"}):
                assert http.post(f"{base}/vaults", json=body, headers=auth).status_code == 400
            assert http.get(f"{base}/applications", headers=auth).json() == before
            assert http.get(f"{base}/vaults", headers=auth).json() == []
            assert http.post(f"{base}/vaults", json={"name": "ok-name"}, headers=auth).status_code == 201
            apps = http.get(f"{base}/applications", headers=auth).json()
            [vault_app] = [a for a in apps if a["display_name"] == "Keyless Vault"]
            assert vault_app["identifier_uri"] == fresh_server.vault_resource and vault_app["open_to_tenant"]
