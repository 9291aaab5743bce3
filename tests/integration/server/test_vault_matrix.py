"""The Key Vault-compatible port's authorization matrix (issue 20 item 4): every operation of its route
table (`keyless.server.vault.routing`) by every vault role, against the role each operation declares
(`REQUIRED_ROLE`): a token holding only that role succeeds, a token holding any one other role gets
403 Forbidden (a list is filtered instead: an empty page), no token gets the 401 challenge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyless.server.vault.routing import ACTIONS, REQUIRED_ROLE
from keyless.vault import model as m
from tests.conftest import SHARED_ENV
from tests.support.server import Admin, RunningServer, start_server, stop_server
from tests.support.vault import VaultHttp, VaultUser, new_user, new_vault, vault_token

SUCCESS = {"set": 200, "get": 200, "update": 200, "list": 200, "versions": 200, "delete": 200, "backup": 200,
           "restore": 200, "list_deleted": 200, "get_deleted": 200, "purge": 204, "recover": 200}


FILTERED = {"list", "list_deleted"}  # Key Vault lists what the caller may list, and refuses nothing


class Vault:
    def __init__(self, server: RunningServer, admin: Admin) -> None:
        self.server = server
        self.name = new_vault(admin)
        self.owner = new_user(admin, self.name, roles=m.ROLES)
        self.owner_token = vault_token(server, self.owner)
        self.tokens: dict[str, str] = {}
        for role in m.ROLES:
            user: VaultUser = new_user(admin, self.name, roles=(role,))
            self.tokens[role] = vault_token(server, user)
        self.count = 0

    def as_owner(self, method: str, path: str, body: Any = None) -> Any:
        with VaultHttp(self.server, self.name, self.owner_token) as v:
            resp = v.request(method, path, json=body)
        assert resp.status_code < 300, resp.text
        return resp.json() if resp.content else None

    def prepare(self, action: str) -> tuple[str, str, Any]:
        """(method, path, body) for one call of `action`, on objects made for it."""
        self.count += 1
        name = f"m{self.count}"
        if action in ("list", "list_deleted"):
            return "GET", "/secrets" if action == "list" else "/deletedsecrets", None
        if action == "set":
            return "PUT", f"/secrets/{name}", {"value": "v"}
        self.as_owner("PUT", f"/secrets/{name}", {"value": "v"})
        if action == "restore":
            blob = self.as_owner("POST", f"/secrets/{name}/backup")["value"]
            self.as_owner("DELETE", f"/secrets/{name}")
            self.as_owner("DELETE", f"/deletedsecrets/{name}")
            return "POST", "/secrets/restore", {"value": blob}
        plain = {"get": ("GET", ""), "update": ("PATCH", ""), "versions": ("GET", "/versions"),
                 "delete": ("DELETE", ""), "backup": ("POST", "/backup")}
        if action in plain:
            method, tail = plain[action]
            return method, f"/secrets/{name}{tail}", {"attributes": {"enabled": True}} if action == "update" else None
        self.as_owner("DELETE", f"/secrets/{name}")
        deleted = {"get_deleted": ("GET", ""), "purge": ("DELETE", ""), "recover": ("POST", "/recover")}
        method, tail = deleted[action]
        return method, f"/deletedsecrets/{name}{tail}", None


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vault]:
    server = start_server(Path(tmp_path_factory.mktemp("vault-matrix")), env=SHARED_ENV)
    try:
        with Admin(server) as admin:
            yield Vault(server, admin)
    finally:
        stop_server(server)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_vault_operation_admits_exactly_its_declared_role(vault: Vault, action: str) -> None:
    for role in m.ROLES:
        method, path, body = vault.prepare(action)
        with VaultHttp(vault.server, vault.name, vault.tokens[role]) as v:
            resp = v.request(method, path, json=body)
        if role == REQUIRED_ROLE[action]:
            assert resp.status_code == SUCCESS[action], f"{action} with {role}: {resp.text}"
        elif action in FILTERED:
            assert (resp.status_code, resp.json()["value"]) == (200, []), f"{action} with only {role}: {resp.text}"
        else:
            assert resp.status_code == 403, f"{action} with only {role}: {resp.status_code} {resp.text}"
            assert resp.json()["error"]["code"] == "Forbidden", resp.text
    method, path, body = vault.prepare(action)
    with VaultHttp(vault.server, vault.name) as v:
        resp = v.request(method, path, json=body)
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"].startswith("Bearer authorization=")
