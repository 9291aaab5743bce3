"""`keyless secret …`: the plaintext is shown once, works at the token endpoint, and revocation bites."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from keyless.crypto.secrets import has_valid_checksum
from tests.integration.cli.helpers import epoch, one_error_line
from tests.support.server import Admin, RunningServer


def test_add_returns_a_working_kls_secret(server: RunningServer) -> None:
    uri = f"api://sec-{uuid.uuid4().hex[:6]}"
    with Admin(server) as admin:
        admin.app(f"res-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=("Data.Read",))
        client = admin.app(f"cli-{uuid.uuid4().hex[:6]}")
        admin.grant(client["client_id"], uri, "Data.Read")
    before = time.time()
    added = json.loads(server.cli("secret", "add", client["client_id"], "--expires-in", "30d",
                                  "--name", "ci").stdout)
    assert added["secret"].startswith("kls_") and has_valid_checksum(added["secret"])
    assert added["client_id"] == client["client_id"]
    assert added["hint"] == added["secret"][4:7]
    assert before + 30 * 86400 - 5 <= epoch(added["expires_at"]) <= time.time() + 30 * 86400 + 5
    assert added["expires"] == added["expires_at"]  # one format: ISO 8601 UTC
    token = server.cli_json("token", "get", client["client_id"], "--secret", added["secret"],
                            "--scope", f"{uri}/.default")
    assert token["token_type"] == "Bearer"
    assert token["access_token"].count(".") == 2


def test_list_never_shows_the_secret(sqlite_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # a wide table: no cell is cut
    name = f"lst-{uuid.uuid4().hex[:6]}"
    sqlite_server.cli("app", "create", name)
    added = json.loads(sqlite_server.cli("secret", "add", name, "--name", "deploy-key").stdout)
    table_out = sqlite_server.cli("secret", "list", name).stdout
    assert added["secret"] not in table_out
    assert added["hint"] in table_out
    assert "deploy-key" in table_out
    for heading in ("hint", "name", "created", "expires", "last used"):
        assert heading in table_out
    rows = sqlite_server.cli_json("secret", "list", name)
    assert [r["id"] for r in rows] == [added["id"]]
    assert added["secret"] not in json.dumps(rows)
    assert "secret" not in rows[0]


def test_revoke_makes_token_get_fail(sqlite_server: RunningServer) -> None:
    uri = f"api://rev-{uuid.uuid4().hex[:6]}"
    with Admin(sqlite_server) as admin:
        client, secret = admin.client_with_role(uri)
    cid = client["client_id"]
    secret_id = sqlite_server.cli_json("secret", "list", cid)[0]["id"]
    sqlite_server.cli("token", "get", cid, "--secret", secret, "--scope", f"{uri}/.default")
    sqlite_server.cli("secret", "revoke", cid, secret_id)
    refused = sqlite_server.cli("token", "get", cid, "--secret", secret, "--scope", f"{uri}/.default",
                                check=False)
    assert refused.returncode == 1
    line = one_error_line(refused.stderr)
    assert "invalid_client" in line
    assert secret not in refused.stderr and refused.stdout == ""
    twice = sqlite_server.cli("secret", "revoke", cid, secret_id, check=False)
    assert twice.returncode == 1
    assert "secret_not_found" in one_error_line(twice.stderr)


def test_bad_duration_is_one_line_and_makes_nothing(sqlite_server: RunningServer) -> None:
    name = f"dur-{uuid.uuid4().hex[:6]}"
    sqlite_server.cli("app", "create", name)
    for bad in ("30x", "soon", "-1d", "0d"):
        proc = sqlite_server.cli("secret", "add", name, "--expires-in", bad, check=False)
        assert proc.returncode == 2, bad  # a malformed value is a usage mistake (docs/cli.md)
        assert "--expires-in" in one_error_line(proc.stderr)
        assert "kls_" not in proc.stdout + proc.stderr
    too_long = sqlite_server.cli("secret", "add", name, "--expires-in", "5y", check=False)
    assert too_long.returncode == 1
    assert "invalid_secret_lifetime" in one_error_line(too_long.stderr)
    assert sqlite_server.cli_json("secret", "list", name) == []
