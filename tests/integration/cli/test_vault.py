"""`keyless vault …` against a real server: the whole secret lifecycle from a shell, values through
stdin and files only, and one clear error line on every failure."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.integration.cli.helpers import epoch, one_error_line
from tests.support.server import Admin, RunningServer
from tests.support.vault import VaultHttp, new_user, vault_token


def _vault(server: RunningServer, **flags: str) -> str:
    name = f"c{uuid.uuid4().hex[:10]}"
    args = [a for k, v in flags.items() for a in (f"--{k}", v)]
    created = server.cli_json("vault", "create", name, *args)
    assert created["name"] == name and created["url"] == f"https://{name}.vault.localhost:{server.vault_port}"
    return name


def test_secret_lifecycle_from_the_shell(server: RunningServer, tmp_path: Path) -> None:
    vault = _vault(server, **{"retention-days": "30"})
    assert vault in [v["name"] for v in server.cli_json("vault", "list")]
    first = json.loads(server.cli("vault", "secret", "set", vault, "db-password", "--tag", "env=dev",
                                  "--content-type", "text/plain", input="hunter2\n").stdout)
    assert first["tags"] == {"env": "dev"} and "value" not in first
    # `get` prints the value alone, byte for byte: one trailing newline of stdin was dropped on `set`.
    assert server.cli("vault", "secret", "get", vault, "db-password").stdout == "hunter2"
    payload = tmp_path / "cert.pem"
    payload.write_bytes(b"-----BEGIN X-----\nline\n\n")
    server.cli("vault", "secret", "set", vault, "db-password", "--file", str(payload))
    assert server.cli("vault", "secret", "get", vault, "db-password").stdout == payload.read_text()
    old = server.cli("vault", "secret", "get", vault, "db-password", "--version", first["version"], "-o", "json")
    assert json.loads(old.stdout)["value"] == "hunter2"
    versions = server.cli_json("vault", "secret", "versions", vault, "db-password")
    assert len(versions) == 2 and versions[0]["version"] == first["version"]
    assert [s["name"] for s in server.cli_json("vault", "secret", "list", vault)] == ["db-password"]

    disabled = server.cli_json("vault", "secret", "update", vault, "db-password", "--version", first["version"],
                               "--disabled")
    assert disabled["enabled"] is False

    backup = tmp_path / "db.kvbackup"
    server.cli("vault", "secret", "backup", vault, "db-password", "--file", str(backup))
    assert backup.stat().st_mode & 0o777 == 0o600 and "hunter2" not in backup.read_text()
    deleted = server.cli_json("vault", "secret", "delete", vault, "db-password")
    assert epoch(deleted["scheduled_purge_at"]) - epoch(deleted["deleted_at"]) == 30 * 86400
    assert [d["name"] for d in server.cli_json("vault", "secret", "deleted", vault)] == ["db-password"]
    server.cli("vault", "secret", "recover", vault, "db-password")
    assert server.cli("vault", "secret", "get", vault, "db-password").stdout == payload.read_text()

    refused = server.cli("vault", "secret", "restore", vault, "--file", str(backup), check=False)
    assert refused.returncode == 1
    assert one_error_line(refused.stderr) == ("error: a secret of that name exists in this vault (live or deleted) "
                                              "(vault_conflict)")
    server.cli("vault", "secret", "delete", vault, "db-password")
    no_purge = server.cli("vault", "secret", "purge", vault, "db-password", check=False)
    assert no_purge.returncode == 1 and "Secrets.Purge" in one_error_line(no_purge.stderr)
    me = server.cli_json("vault", "grants", vault)[0]["principal_client_id"]
    server.cli("vault", "grant", vault, me, "--role", "Secrets.Purge")
    server.cli("vault", "secret", "purge", vault, "db-password")
    restored = server.cli_json("vault", "secret", "restore", vault, "--file", str(backup))
    assert restored["name"] == "db-password"
    assert server.cli("vault", "secret", "get", vault, "db-password").stdout == payload.read_text()


def test_grant_a_reader_who_then_uses_the_key_vault_api(server: RunningServer) -> None:
    vault = _vault(server)
    server.cli("vault", "secret", "set", vault, "api-key", input="k-123")
    with Admin(server) as admin:
        reader = new_user(admin)
    grants = server.cli_json("vault", "grant", vault, reader.client_id, "--role", "Secrets.Reader",
                             "--secret", "api-key")
    assert sorted(g["role"] for g in grants) == ["Secrets.Get", "Secrets.List"]
    assert {g["secret"] for g in grants} == {"api-key"}
    token = vault_token(server, reader)
    with VaultHttp(server, vault, token) as kv:
        assert kv.request("GET", "/secrets/api-key/").json()["value"] == "k-123"
    for g in grants:
        server.cli("vault", "revoke", vault, g["id"])
    with VaultHttp(server, vault, token) as kv:  # caches are cleared on change in this process
        assert kv.request("GET", "/secrets/api-key/").status_code == 404


def test_rotate_key_keeps_every_value_readable(server: RunningServer) -> None:
    vault = _vault(server)
    for i in range(3):
        server.cli("vault", "secret", "set", vault, f"r{i}", input=f"value-{i}")
    rotated = server.cli_json("vault", "rotate-key", vault)
    assert rotated["rewrapped"] == 3 and rotated["retired_keys"] == 1
    for i in range(3):
        assert server.cli("vault", "secret", "get", vault, f"r{i}").stdout == f"value-{i}"


def test_purge_protection_and_its_one_way_switch(server: RunningServer) -> None:
    vault = _vault(server)
    updated = server.cli_json("vault", "update", vault, "--purge-protection")
    assert updated["purge_protection"] is True and updated["recovery_level"] == "Recoverable"


def test_failures_are_one_line(server: RunningServer, tmp_path: Path) -> None:
    for args, expected in [
        (("vault", "create", "x"), "error: vault names are 3-24 characters"),
        (("vault", "secret", "get", "nosuchvault1", "a"), "error: no such vault (vault_not_found)"),
        (("vault", "secret", "set", "nosuchvault1", "a", "--file", str(tmp_path / "missing")),
         "error: cannot read"),
        (("vault", "grant", "nosuchvault1", "someone", "--role", "Secrets.Get"), "error: "),
    ]:
        done = server.cli(*args, check=False, input="")
        assert done.returncode == 1, args
        assert one_error_line(done.stderr).startswith(expected), done.stderr
    vault = _vault(server)
    empty = server.cli("vault", "secret", "set", vault, "a", "--file", "-", check=False, input="")
    assert empty.returncode == 0  # an empty value is a value
    assert server.cli("vault", "secret", "get", vault, "a").stdout == ""
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe")
    done = server.cli("vault", "secret", "set", vault, "b", "--file", str(binary), check=False)
    assert one_error_line(done.stderr) == "error: the secret value must be UTF-8 text (base64-encode binary data)"


def test_every_vault_command_has_help_with_an_example(server: RunningServer) -> None:
    for command in (("create",), ("list",), ("show",), ("update",), ("grant",), ("grants",), ("revoke",),
                    ("rotate-key",), ("secret", "set"), ("secret", "get"), ("secret", "update"), ("secret", "list"),
                    ("secret", "versions"), ("secret", "delete"), ("secret", "deleted"), ("secret", "recover"),
                    ("secret", "purge"), ("secret", "backup"), ("secret", "restore")):
        out = server.cli("vault", *command, "--help").stdout
        assert "Example:" in out, command
