"""Management API for hosts and managed identities: problem details with stable codes, secrets
shown once and never again, audit entries."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from keyless.cli.common import CliError
from tests.support.server import Admin, RunningServer


def _problem(admin: Admin, method: str, path: str, body: Any = None) -> str:
    with pytest.raises(CliError) as err:
        admin.api.call(method, path, json_body=body)
    return str(err.value)


def test_host_lifecycle_and_codes(admin: Admin, server: RunningServer) -> None:
    name = f"api-{uuid.uuid4().hex[:6]}"
    created = admin.api.call("POST", "/hosts", json_body={"name": name, "join_ttl": 120})
    assert created["join_expires_at"] - created["created_at"] == pytest.approx(120, abs=2)
    assert "join_token" not in admin.api.call("GET", f"/hosts/{name}")
    assert "host_exists" in _problem(admin, "POST", "/hosts", {"name": name})
    assert "invalid_join_ttl" in _problem(admin, "POST", "/hosts", {"name": name + "x", "join_ttl": 5})
    assert "invalid_host_name" in _problem(admin, "POST", "/hosts", {"name": "UPPER"})
    assert "validation_failed" in _problem(admin, "POST", "/hosts", {"name": "x", "id": "mine"})
    renewed = admin.api.call("POST", f"/hosts/{created['id']}/join-token", json_body={})
    assert renewed["join_token"] != created["join_token"]
    audit = admin.api.call("GET", "/logs/audit", params={"action": "host.add"})
    entry = next(a for a in audit if a["target_id"] == created["id"])
    assert created["join_token"] not in str(entry)  # the token is never logged
    admin.api.call("DELETE", f"/hosts/{name}")
    assert "host_not_found" in _problem(admin, "GET", f"/hosts/{name}")


def test_identity_codes(admin: Admin) -> None:
    name = f"id-{uuid.uuid4().hex[:6]}"
    ident = admin.api.call("POST", "/identities", json_body={"name": name})
    for ref in (name, ident["client_id"], ident["object_id"]):
        assert admin.api.call("GET", f"/identities/{ref}")["client_id"] == ident["client_id"]
    for ref in (name, ident["resource_id"], ident["resource_id"].lower()):
        assert [i["client_id"] for i in admin.api.call("GET", "/identities", params={"ref": ref})] == [
            ident["client_id"]]

    assert "identity_exists" in _problem(admin, "POST", "/identities", {"name": name})
    assert "invalid_identity_name" in _problem(admin, "POST", "/identities", {"name": str(uuid.uuid4())})
    host = admin.api.call("POST", "/hosts", json_body={"name": f"h-{uuid.uuid4().hex[:6]}"})
    assert "not_assigned" in _problem(admin, "POST", f"/identities/{name}/bindings", {"host": host["id"], "uid": 1})
    admin.api.call("PUT", f"/identities/{name}/hosts/{host['id']}")
    assert "no_selector" in _problem(admin, "POST", f"/identities/{name}/bindings", {"host": host["id"]})
    assert "invalid_selector" in _problem(admin, "POST", f"/identities/{name}/bindings",
                                          {"host": host["id"], "exe": "relative/path"})
    system = host["system_identity"]["client_id"]
    assert "system_assigned" in _problem(admin, "PUT", f"/identities/{system}/hosts/{host['id']}")
    assert "managed_identity" in _problem(admin, "POST", f"/applications/{ident['client_id']}/secrets", {})
    admin.api.call("DELETE", f"/identities/{name}/hosts/{host['id']}")
    assert "assignment_not_found" in _problem(admin, "DELETE", f"/identities/{name}/hosts/{host['id']}")
