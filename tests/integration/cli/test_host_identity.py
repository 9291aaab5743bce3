"""`keyless host …` and `keyless identity …` against a real server."""

from __future__ import annotations

import uuid

from typer.testing import CliRunner

from keyless.cli.main import app as keyless_app
from tests.integration.cli.helpers import one_error_line
from tests.integration.cli.test_app import _leaf_commands
from tests.support.server import RunningServer


def test_every_host_identity_and_agent_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    commands = [c for c in _leaf_commands() if c[0] in {"host", "identity", "agent"}]
    assert len(commands) >= 13
    for path in [*commands, ["agent"]]:
        result = runner.invoke(keyless_app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "Example: keyless " in result.output, path
        shared = ("--output",) if path[0] == "agent" else ("--data-dir", "--server", "--ca", "--output")
        if path != ["agent"]:
            for option in shared:
                assert option in result.output, (path, option)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_host_add_prints_a_join_token_and_creates_the_system_identity(server: RunningServer) -> None:
    name = _name("build")
    created = server.cli_json("host", "add", name, "--join-ttl", "10m")
    assert created["join_token"].startswith(f"kjt.{server.tenant_id}.{created['id']}.")
    assert created["status"] == "pending"
    identity = created["system_identity"]
    assert identity["kind"] == "system" and identity["name"] == name
    assert identity["resource_id"].endswith(f"/hosts/{name}")
    listed = {h["name"]: h for h in server.cli_json("host", "list")}
    assert listed[name]["system_client_id"] == identity["client_id"]
    assert "join_token" not in listed[name]
    shown = server.cli_json("host", "show", name)
    assert [i["client_id"] for i in shown["identities"]] == [identity["client_id"]]
    systems = {i["client_id"] for i in server.cli_json("identity", "list", "--kind", "system")}
    assert identity["client_id"] in systems
    again = server.cli("host", "add", name, check=False)
    assert again.returncode == 1
    assert "a host with that name exists" in one_error_line(again.stderr)


def test_identity_create_assign_bind_and_remove(server: RunningServer) -> None:
    host = _name("web")
    server.cli_json("host", "add", host)
    ident = _name("billing-api")
    created = server.cli_json("identity", "create", ident)
    assert created["kind"] == "user" and created["host_id"] is None
    unassigned = server.cli("identity", "bind", ident, "--host", host, "--uid", "1234", check=False)
    assert unassigned.returncode == 1
    assert "assign the identity to the host first" in one_error_line(unassigned.stderr)
    server.cli_json("identity", "assign", ident, "--host", host)
    server.cli_json("identity", "assign", created["client_id"], "--host", host)  # idempotent, by client id
    server.cli_json("identity", "assign", created["resource_id"].upper(), "--host", host)  # by resource id
    binding = server.cli_json("identity", "bind", ident, "--host", host, "--uid", "1234", "--exe", "/usr/bin/python3")
    assert binding["uid"] == 1234 and binding["exe"] == "/usr/bin/python3"
    assert [b["id"] for b in server.cli_json("identity", "bindings", "--host", host)] == [binding["id"]]
    shown = server.cli_json("host", "show", host)
    assert [i["kind"] for i in shown["identities"]] == ["system", "user"]
    no_selector = server.cli("identity", "bind", ident, "--host", host, check=False)
    assert "at least one of uid, gid, exe, unit" in one_error_line(no_selector.stderr)
    server.cli_json("identity", "assign", ident, "--host", host, "--remove")
    assert server.cli_json("identity", "bindings", "--host", host) == []  # bindings go with the assignment
    server.cli_json("identity", "delete", ident)
    gone = server.cli("identity", "delete", ident, check=False)
    assert "no such managed identity" in one_error_line(gone.stderr)


def test_managed_identities_hold_no_credentials_and_get_grants(server: RunningServer) -> None:
    ident = server.cli_json("identity", "create", _name("orders-reader"))
    refused = server.cli("secret", "add", ident["client_id"], check=False)
    assert refused.returncode == 1
    assert "no secrets or certificates of its own" in one_error_line(refused.stderr)
    uri = f"api://{_name('orders')}"
    server.cli_json("app", "create", _name("orders"), "--identifier-uri", uri, "--role", "Orders.Read")
    granted = server.cli_json("grant", ident["client_id"], uri, "Orders.Read")
    assert granted["principal_object_id"] == ident["object_id"]
    system = server.cli_json("host", "add", _name("sys"))["system_identity"]
    deleting = server.cli("identity", "delete", system["client_id"], check=False)
    assert "goes away with its host" in one_error_line(deleting.stderr)
    app_delete = server.cli("app", "delete", ident["client_id"], "--yes", check=False)
    assert "managed identity" in one_error_line(app_delete.stderr)


def test_host_remove(server: RunningServer) -> None:
    name = _name("gone")
    created = server.cli_json("host", "add", name)
    assert server.cli_json("host", "remove", name) == {"removed": True, "host": name}
    assert name not in {h["name"] for h in server.cli_json("host", "list")}
    assert created["system_identity"]["client_id"] not in {i["client_id"] for i in server.cli_json("identity", "list")}
    missing = server.cli("host", "remove", name, check=False)
    assert "no such host" in one_error_line(missing.stderr)
    bad = server.cli("host", "add", "Bad_Name", check=False)
    assert "host name must be" in one_error_line(bad.stderr)
