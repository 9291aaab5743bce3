"""`keyless scan` against a real server (SQLite and PostgreSQL): a live secret committed and deleted
in a git repository is found with its commit, shown only by hint, reported live with its owner, and
`--revoke` revokes it at the token endpoint at once, with one audit record naming the location
(catalog O09; docs/leaks.md)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from keyless.crypto.secrets import new_client_secret
from tests.integration.cli.helpers import epoch, one_error_line
from tests.support.gitrepo import git
from tests.support.server import Admin, RunningServer


def token_status(server: RunningServer, client_id: str, secret: str, resource: str) -> int:
    with server.http() as http:
        return http.post(server.token_endpoint, data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
            "scope": f"{resource}/.default"}).status_code


def test_scan_finds_live_secret_in_history_and_revoke_kills_it(server: RunningServer, tmp_path: Path) -> None:
    resource = f"api://scan-{uuid.uuid4().hex[:6]}"
    with Admin(server) as admin:
        client, secret = admin.client_with_role(resource)
    stranger = new_client_secret()  # well-formed, never issued here
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "deploy.env").write_text(f"A=1\nCLIENT_SECRET={secret}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "oops")
    commit = git(repo, "rev-parse", "HEAD")
    (repo / "deploy.env").unlink()
    (repo / "notes.txt").write_text(f"old: {stranger}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "remove it")
    assert token_status(server, client["client_id"], secret, resource) == 200

    looked = server.cli("scan", str(repo), "--git", "-o", "json", check=False)
    assert looked.returncode == 1, looked.stderr
    assert secret not in looked.stdout + looked.stderr and stranger not in looked.stdout + looked.stderr
    body = json.loads(looked.stdout)
    by_location = {f["location"]: f for f in body["findings"]}
    leaked = by_location[f"{commit}:deploy.env:2"]
    assert (leaked["status"], leaked["client_id"], leaked["hint"]) == ("active", client["client_id"], secret[4:7])
    assert leaked["revoked"] is False
    assert {f["status"] for f in body["findings"] if f["hint"] == stranger[4:7]} == {"unknown"}
    assert body["active"] == 1 and body["revoked"] == 0
    assert token_status(server, client["client_id"], secret, resource) == 200  # a lookup revokes nothing

    since = time.time()
    revoked = server.cli("scan", str(repo), "--git", "--revoke", "-o", "json", check=False)
    assert revoked.returncode == 1, revoked.stderr
    assert secret not in revoked.stdout + revoked.stderr
    assert json.loads(revoked.stdout)["revoked"] == 1
    deadline = time.monotonic() + 1.0
    while token_status(server, client["client_id"], secret, resource) != 401:
        assert time.monotonic() < deadline, "the revoked secret still works after 1 s"
        time.sleep(0.05)
    audit = [r for r in server.cli_json("log", "audit") if r.get("action") == "secret.leaked"
             and r.get("target_id") == client["client_id"]]
    assert len(audit) == 1 and epoch(audit[0]["time"]) >= since - 1
    assert secret not in json.dumps(audit)
    assert f"{commit}:deploy.env:2" in json.dumps(audit)

    table = server.cli("scan", str(repo), "--git", check=False)  # for people: location and hint only
    assert table.returncode == 0 and secret not in table.stdout + table.stderr
    assert f"kls_{secret[4:7]}…" in table.stdout and "revoked" in table.stdout
    again = server.cli("scan", str(repo), "--git", "--revoke", "-o", "json", check=False)
    assert again.returncode == 0, again.stderr  # nothing live any more
    assert {f["status"] for f in json.loads(again.stdout)["findings"]} == {"revoked", "unknown"}
    with Admin(server) as admin:
        recorded = admin.api.call("GET", "/leaks", params={"client_id": client["client_id"]})
    assert [(r["location"], r["revoked"], r["status_before"]) for r in recorded] == [
        (f"{commit}:deploy.env:2", True, "active")]


def test_offline_needs_no_server_and_fails_on_any_secret(tmp_path: Path, server: RunningServer) -> None:
    (tmp_path / "a.txt").write_text(new_client_secret())
    secret = (tmp_path / "a.txt").read_text()
    out = server.cli("scan", str(tmp_path), "--offline", "--server", "https://127.0.0.1:9", check=False)
    assert out.returncode == 1 and secret not in out.stdout + out.stderr
    assert "unverified" in out.stdout and "1 secret(s) found" in out.stderr
    clean = tmp_path / "clean"
    clean.mkdir()
    assert server.cli("scan", str(clean), check=False).returncode == 0
    assert server.cli("scan", str(clean), "--offline", "--revoke", check=False).returncode == 2
    missing = server.cli("scan", str(tmp_path / "absent"), check=False)
    assert missing.returncode == 1
    one_error_line(missing.stderr)
