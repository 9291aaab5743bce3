"""`keyless app …` against a real server, through the real `keyless` process."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from keyless.cli.main import app as keyless_app
from tests.integration.cli.helpers import one_error_line
from tests.support.server import RunningServer

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")



def _leaf_commands() -> list[list[str]]:
    """Every command path below `keyless` (e.g. ["app", "create"], ["grant"])."""
    found: list[list[str]] = []

    def walk(group: Any, path: list[str]) -> None:
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, [*path, name])
            else:
                found.append([*path, name])

    walk(typer.main.get_command(keyless_app), [])
    return found


MY_NOUNS = {"app", "secret", "grant", "grants", "token", "log", "key", "tenant"}


def test_every_command_has_help_with_an_example_and_the_shared_options() -> None:
    runner = CliRunner()
    commands = [c for c in _leaf_commands() if c[0] in MY_NOUNS]
    assert len(commands) >= 22
    for path in commands:
        result = runner.invoke(keyless_app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "Example: keyless " in result.output, path
        for option in ("--data-dir", "--server", "--ca", "--output"):
            assert option in result.output, (path, option)


def test_create_prints_guids_and_the_application(server: RunningServer) -> None:
    name = f"orders-{uuid.uuid4().hex[:6]}"
    uri = f"api://{name}"
    created = json.loads(server.cli("app", "create", name, "--identifier-uri", uri, "--role", "Orders.Read",
                                    "--role", "Orders.Write").stdout)
    assert GUID.fullmatch(created["client_id"])
    assert GUID.fullmatch(created["object_id"])
    assert created["client_id"] != created["object_id"]
    assert created["display_name"] == name
    assert created["identifier_uri"] == uri
    assert created["enabled"] is True
    assert sorted(r["value"] for r in created["roles"]) == ["Orders.Read", "Orders.Write"]
    # show resolves by client id, identifier URI and display name alike
    for ref in (created["client_id"], uri, name):
        assert server.cli_json("app", "show", ref)["client_id"] == created["client_id"]
    listed = server.cli_json("app", "list")
    assert created["client_id"] in {a["client_id"] for a in listed}


def test_list_is_a_table_by_default(sqlite_server: RunningServer) -> None:
    name = f"tbl-{uuid.uuid4().hex[:6]}"
    sqlite_server.cli("app", "create", name)
    out = sqlite_server.cli("app", "list").stdout
    assert name in out
    assert "client_id" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_disable_enable_and_add_role(sqlite_server: RunningServer) -> None:
    name = f"res-{uuid.uuid4().hex[:6]}"
    sqlite_server.cli("app", "create", name, "--identifier-uri", f"api://{name}")
    assert sqlite_server.cli_json("app", "disable", name)["enabled"] is False
    assert sqlite_server.cli_json("app", "show", name)["enabled"] is False
    assert sqlite_server.cli_json("app", "enable", name)["enabled"] is True
    role = json.loads(sqlite_server.cli("app", "add-role", f"api://{name}", "Data.Write").stdout)
    assert role["value"] == "Data.Write"
    roles = [r["value"] for r in sqlite_server.cli_json("app", "show", name)["roles"]]
    assert roles == ["Data.Write"]
    again = sqlite_server.cli("app", "add-role", name, "Data.Write", check=False)
    assert again.returncode == 1
    assert "role_exists" in one_error_line(again.stderr)


def test_delete_needs_yes_without_a_terminal(sqlite_server: RunningServer) -> None:
    name = f"doomed-{uuid.uuid4().hex[:6]}"
    created = sqlite_server.cli_json("app", "create", name)
    refused = sqlite_server.cli("app", "delete", name, check=False, input="")
    assert refused.returncode == 1
    assert "--yes" in one_error_line(refused.stderr)
    assert sqlite_server.cli_json("app", "show", created["client_id"])["display_name"] == name
    sqlite_server.cli("app", "delete", name, "--yes")
    gone = sqlite_server.cli("app", "show", created["client_id"], check=False)
    assert gone.returncode == 1
    assert "application_not_found" in one_error_line(gone.stderr)


def test_invalid_input_is_one_error_line(sqlite_server: RunningServer) -> None:
    roles_without_uri = sqlite_server.cli("app", "create", "x", "--role", "A.B", check=False)
    assert roles_without_uri.returncode == 1
    assert "identifier_uri_required" in one_error_line(roles_without_uri.stderr)
    unknown = sqlite_server.cli("app", "show", "no-such-app", check=False)
    assert unknown.returncode == 1
    assert "application_not_found" in one_error_line(unknown.stderr)
