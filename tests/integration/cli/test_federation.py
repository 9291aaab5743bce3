"""`keyless federation add|list|remove|test|lint` against a real server and a real external issuer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.issuer import ExternalIssuer, exchange
from tests.support.server import Admin, RunningServer

SUBJECT = "repo:acme/api:ref:refs/heads/main"


@pytest.fixture
def app_id(fed_server: RunningServer) -> str:
    with Admin(fed_server) as admin:
        admin.app(f"cli-fed-res-{uuid.uuid4().hex[:6]}", identifier_uri="api://cli-fed-" + uuid.uuid4().hex[:8],
                  roles=("Data.Read",))
        return str(admin.app(f"cli-fed-{uuid.uuid4().hex[:6]}")["client_id"])


def test_add_list_remove(fed_server: RunningServer, app_id: str, issuer: ExternalIssuer) -> None:
    added = fed_server.cli_json("federation", "add", app_id, "--name", "github-main", "--issuer", issuer.issuer,
                                "--subject", SUBJECT, "--claim", "repository_owner=acme", "--replay", "jti",
                                "--max-token-lifetime", "1h")
    assert added["name"] == "github-main"
    assert added["audiences"] == ["api://KeylessTokenExchange"]
    assert added["claims"] == {"repository_owner": "acme"}
    assert added["replay"] == "jti"
    assert added["max_token_lifetime"] == 3600
    listed = fed_server.cli_json("federation", "list", app_id)
    assert [c["id"] for c in listed] == [added["id"]]
    table = fed_server.cli("federation", "list", app_id).stdout
    assert "github-main" in table and SUBJECT in table
    removed = fed_server.cli_json("federation", "remove", app_id, "github-main")
    assert removed["removed"] is True
    assert fed_server.cli_json("federation", "list", app_id) == []


def test_add_refuses_bad_input_with_one_line(fed_server: RunningServer, app_id: str) -> None:
    proc = fed_server.cli("federation", "add", app_id, "--name", "x", "--issuer", "http://issuer.example.test",
                          "--subject", SUBJECT, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: issuer must be an https URL (invalid_issuer)"
    proc = fed_server.cli("federation", "add", app_id, "--name", "x", "--issuer", "https://issuer.example.test",
                          check=False)
    assert proc.returncode == 2  # a usage mistake
    assert proc.stderr.strip() == "error: give exactly one of --subject or --subject-pattern (see --help)"
    proc = fed_server.cli("federation", "add", app_id, "--name", "x", "--issuer", "https://issuer.example.test",
                          "--subject", SUBJECT, "--claim", "oops", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: --claim 'oops': write NAME=VALUE, e.g. repository_owner=acme "
                                   "(see --help)")


def test_test_explains_the_match_and_the_mismatch(fed_server: RunningServer, app_id: str, issuer: ExternalIssuer,
                                                  tmp_path: Path) -> None:
    fed_server.cli_json("federation", "add", app_id, "--name", "main", "--issuer", issuer.issuer,
                        "--subject", SUBJECT)
    good, bad = tmp_path / "good.jwt", tmp_path / "bad.jwt"
    good.write_text(issuer.token(SUBJECT) + "\n")
    bad.write_text(issuer.token("repo:acme/api:ref:refs/heads/dev"))
    proc = fed_server.cli("federation", "test", app_id, "--token", str(good))
    assert proc.stdout.splitlines()[0] == "result: match - credential 'main' matches"
    proc = fed_server.cli("federation", "test", app_id, "--token", str(bad), check=False)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == "result: no_match - the token's subject matches no federated credential for its issuer"
    assert "sub=repo:acme/api:ref:refs/heads/dev" in proc.stdout
    assert any(line.strip().startswith("main: subject:") for line in lines)
    report = json.loads(fed_server.cli("federation", "test", app_id, "--token", str(bad), "--output", "json",
                                       check=False).stdout)
    assert report["failed_check"] == "subject"
    assert report["credentials"][0]["passed"] == ["audience"]
    # `test` consumes nothing: the same token still signs in afterwards
    with Admin(fed_server) as admin:
        listed = admin.api.call("GET", f"/applications/{app_id}/federated-credentials")
    assert listed[0]["replay"] == "reuse"
    resp = exchange(fed_server, app_id, good.read_text().strip(), "api://nope/.default")
    assert resp.json()["error"] == "invalid_scope"  # authenticated; only the made-up resource is refused


def test_lint_flags_broad_patterns(fed_server: RunningServer, app_id: str) -> None:
    fed_server.cli_json("federation", "add", app_id, "--name", "narrow", "--issuer", "https://issuer.example.test",
                        "--subject-pattern", "repo:acme/api:*", "--claim", "repository_owner_id=42")
    assert fed_server.cli("federation", "lint", app_id).stdout.strip() == "no findings"
    fed_server.cli_json("federation", "add", app_id, "--name", "broad", "--issuer", "https://issuer.example.test",
                        "--subject-pattern", "system:serviceaccount:*")
    proc = fed_server.cli("federation", "lint", app_id, "--output", "json", check=False)
    assert proc.returncode == 1
    findings = json.loads(proc.stdout)
    assert [(f["name"], f["code"], f["severity"]) for f in findings] == [
        ("broad", "pattern_spans_namespaces", "error")]


def test_help_has_examples(fed_server: RunningServer) -> None:
    for command in ("add", "list", "remove", "test", "lint"):
        out = fed_server.cli("federation", command, "--help").stdout
        assert "Example: keyless federation " + command in out


def test_outbound_allow_list_deny(fed_server: RunningServer, app_id: str) -> None:
    assert fed_server.cli_json("federation", "outbound", "list", app_id)["audiences"] == []
    allowed = fed_server.cli_json("federation", "outbound", "allow", app_id, "api://KeylessTokenExchange")
    assert allowed["audiences"] == ["api://KeylessTokenExchange"]
    assert fed_server.cli("federation", "outbound", "list", app_id).stdout.strip() == "api://KeylessTokenExchange"
    proc = fed_server.cli("federation", "outbound", "allow", app_id, "not a uri", check=False)
    assert proc.returncode == 1 and "(invalid_audience)" in proc.stderr
    denied = fed_server.cli_json("federation", "outbound", "deny", app_id, "api://KeylessTokenExchange")
    assert denied["audiences"] == []
    proc = fed_server.cli("federation", "outbound", "deny", app_id, "api://KeylessTokenExchange", check=False)
    assert proc.returncode == 1 and "(audience_not_found)" in proc.stderr


def test_serve_flags_trust_an_issuer_ca_and_exempt_a_private_issuer(
    tmp_path: Path, issuer: ExternalIssuer, issuer_ca: tuple[Any, Path]
) -> None:
    """`keyless serve --federation-ca FILE --allow-private-issuer 127.0.0.1` (instead of the environment)."""
    import os
    import signal
    import subprocess

    from tests.support.server import RunningServer, _wait_ready, cli_command, free_port

    port, data_dir = free_port(), tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLESS_")}
    init = subprocess.run(cli_command("init", "--data-dir", str(data_dir), "--port", str(port), "--output", "json"),
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(cli_command("serve", "--data-dir", str(data_dir), "--port", str(port),
                                            "--federation-ca", str(issuer_ca[1]),
                                            "--allow-private-issuer", "127.0.0.1"),
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    server = RunningServer(url=f"https://127.0.0.1:{port}", data_dir=data_dir,
                           tenant_id=json.loads(init.stdout)["tenant_id"], database_url=None, proc=proc,
                           log_path=tmp_path / "server.log")
    try:
        _wait_ready(server)
        with Admin(server) as admin:
            from tests.support.issuer import federated_app

            app = federated_app(admin, issuer.issuer, SUBJECT)
        assert exchange(server, app.client_id, issuer.token(SUBJECT), app.scope).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def test_identity_add_list_test_lint_remove(fed_server: RunningServer, issuer: ExternalIssuer,
                                            tmp_path: Path) -> None:
    """`--identity` takes the place of APP on every subcommand; the application form is unchanged."""
    name = f"cli-fed-mi-{uuid.uuid4().hex[:6]}"
    identity = fed_server.cli_json("identity", "create", name)
    added = fed_server.cli_json("federation", "add", "--identity", name, "--name", "prod", "--issuer",
                                issuer.issuer, "--subject", SUBJECT)
    assert (added["owner_type"], added["client_id"]) == ("identity", identity["client_id"])
    by_resource_id = fed_server.cli_json("federation", "list", "--identity", identity["resource_id"])
    assert [c["id"] for c in by_resource_id] == [added["id"]]
    token = tmp_path / "token.jwt"
    token.write_text(issuer.token(SUBJECT))
    proc = fed_server.cli("federation", "test", "--identity", name, "--token", str(token))
    assert proc.stdout.splitlines()[0] == "result: match - credential 'prod' matches"
    assert fed_server.cli_json("federation", "lint", "--identity", name) == []
    proc = fed_server.cli("federation", "list", identity["client_id"], "--identity", name, check=False)
    assert (proc.returncode, proc.stderr.strip()) == (2, "error: give exactly one of APP or --identity (see --help)")
    for args in (("list",), ("remove", "--identity", name), ("outbound", "allow", "--identity", name)):
        assert fed_server.cli("federation", *args, check=False).returncode == 2  # a usage mistake, as before
    removed = fed_server.cli_json("federation", "remove", "--identity", name, "prod")
    assert removed == {"removed": True, "client_id": identity["client_id"], "credential": "prod"}
    assert fed_server.cli_json("federation", "list", "--identity", name) == []
    allowed = fed_server.cli_json("federation", "outbound", "allow", "--identity", name, "api://KeylessTokenExchange")
    assert allowed == {"client_id": identity["client_id"], "audiences": ["api://KeylessTokenExchange"]}
    denied = fed_server.cli_json("federation", "outbound", "deny", "--identity", name, "api://KeylessTokenExchange")
    assert denied["audiences"] == []
