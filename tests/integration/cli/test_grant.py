"""`keyless grant` and `keyless grants …`: a grant puts the role into the client's tokens."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from tests.integration.cli.helpers import one_error_line
from tests.support.server import Admin, RunningServer


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return value


def _setup(srv: RunningServer) -> tuple[dict[str, Any], str, str, str]:
    """A resource with two roles and a client with a secret, but no grant yet."""
    uri = f"api://grant-{uuid.uuid4().hex[:6]}"
    name = f"cli-{uuid.uuid4().hex[:6]}"
    with Admin(srv) as admin:
        admin.app(f"res-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=("Data.Read", "Data.Write"))
        client = admin.app(name)
        return client, name, uri, admin.secret(client["client_id"])["secret"]


def test_grant_puts_the_role_in_the_token(server: RunningServer) -> None:
    client, _, uri, secret = _setup(server)
    cid = client["client_id"]
    granted = json.loads(server.cli("grant", cid, uri, "Data.Read").stdout)
    assert granted["client_id"] == cid
    assert granted["role"] == "Data.Read"
    assert granted["principal_object_id"] == client["object_id"]
    token = server.cli_json("token", "get", cid, "--secret", secret, "--scope", f"{uri}/.default")
    claims = claims_of(token["access_token"])
    assert claims["roles"] == ["Data.Read"]
    assert claims["aud"] == uri
    assert claims["oid"] == client["object_id"]


def test_grant_by_name_is_idempotent_and_listed(sqlite_server: RunningServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    client, name, uri, _ = _setup(sqlite_server)
    first = sqlite_server.cli_json("grant", name, uri, "Data.Write")
    again = sqlite_server.cli_json("grant", client["client_id"], uri, "Data.Write")
    assert again["id"] == first["id"]
    by_client = sqlite_server.cli_json("grants", "list", "--client", name)
    assert [g["id"] for g in by_client] == [first["id"]]
    by_resource = sqlite_server.cli_json("grants", "list", "--resource", uri)
    assert [g["id"] for g in by_resource] == [first["id"]]
    table = sqlite_server.cli("grants", "list", "--resource", uri).stdout
    assert first["id"] in table and name in table and uri in table and "Data.Write" in table


def test_revoke_removes_access(sqlite_server: RunningServer) -> None:
    client, _, uri, secret = _setup(sqlite_server)
    cid = client["client_id"]
    grant = sqlite_server.cli_json("grant", cid, uri, "Data.Read")
    sqlite_server.cli("grants", "revoke", grant["id"])
    assert sqlite_server.cli_json("grants", "list", "--client", cid) == []
    refused = sqlite_server.cli("token", "get", cid, "--secret", secret, "--scope", f"{uri}/.default",
                                check=False)
    assert refused.returncode == 1
    assert "invalid_scope" in one_error_line(refused.stderr)
    twice = sqlite_server.cli("grants", "revoke", grant["id"], check=False)
    assert twice.returncode == 1
    assert "grant_not_found" in one_error_line(twice.stderr)


def test_unknown_role_or_resource_is_one_error_line(sqlite_server: RunningServer) -> None:
    client, _, uri, _ = _setup(sqlite_server)
    no_role = sqlite_server.cli("grant", client["client_id"], uri, "Data.Delete", check=False)
    assert no_role.returncode == 1
    assert "role_not_found" in one_error_line(no_role.stderr)
    no_resource = sqlite_server.cli("grant", client["client_id"], "api://nowhere", "Data.Read", check=False)
    assert no_resource.returncode == 1
    assert "resource_not_found" in one_error_line(no_resource.stderr)
