"""`keyless cert new|add|list|revoke`, `token get --cert --key`, and the CLI's own certificate credential."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from keyless.cli.common import ManagementClient, resolve
from keyless.crypto.client_keys import generate_client_key, private_key_pem, self_signed_certificate
from tests.integration.cli.helpers import one_error_line
from tests.support.server import Admin, RunningServer, cli_command, start_server, stop_server

KEY_MARKERS = ("PRIVATE KEY", "BEGIN RSA", "BEGIN EC")


def _client(srv: RunningServer) -> tuple[dict[str, Any], str]:
    """A client granted Data.Read on a new resource, with no credential yet; and the scope."""
    uri = f"api://cert-{uuid.uuid4().hex[:6]}"
    with Admin(srv) as admin:
        admin.app(f"res-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=("Data.Read",))
        client = admin.app(f"worker-{uuid.uuid4().hex[:6]}")
        admin.grant(client["client_id"], uri, "Data.Read")
    return client, f"{uri}/.default"


def _claims(token_response: str) -> dict[str, Any]:
    payload = json.loads(token_response)["access_token"].split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _token(srv: RunningServer, client_id: str, created: dict[str, Any], scope: str, *, check: bool = True) -> Any:
    return srv.cli("token", "get", client_id, "--cert", created["certificate_path"], "--key", created["key_path"],
                   "--scope", scope, check=check)


def test_new_self_signed_registers_only_the_certificate_and_gets_a_token(server: RunningServer,
                                                                          tmp_path: Path) -> None:
    client, scope = _client(server)
    created = server.cli_json("cert", "new", client["display_name"], "--out", str(tmp_path), "--name", "ci")
    assert set(created) == {"id", "client_id", "certificate_path", "key_path", "x5t", "x5t_s256", "not_after",
                            "key_type"}
    assert created["client_id"] == client["client_id"] and created["key_type"] == "RSA"
    key_path, cert_path = Path(created["key_path"]), Path(created["certificate_path"])
    assert key_path == tmp_path / f"{client['display_name']}.key" and cert_path.suffix == ".pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key_path.read_bytes() and b"PRIVATE" not in cert_path.read_bytes()

    listed = server.cli_json("cert", "list", client["client_id"])
    assert [c["id"] for c in listed] == [created["id"]]
    assert listed[0]["x5t_s256"] == created["x5t_s256"] and listed[0]["display_name"] == "ci"
    table = server.cli("cert", "list", client["client_id"]).stdout
    assert created["id"] in table
    for text in (json.dumps(listed), table):
        assert not any(marker in text for marker in KEY_MARKERS)
    with Admin(server) as admin:
        assert admin.api.call("GET", f"/applications/{client['client_id']}/secrets") == []

    claims = _claims(_token(server, client["client_id"], created, scope).stdout)
    assert claims["azpacr"] == "2"
    assert claims["roles"] == ["Data.Read"] and claims["appid"] == client["client_id"]


def test_new_from_the_local_ca_with_an_ec_key(sqlite_server: RunningServer, tmp_path: Path) -> None:
    client, scope = _client(sqlite_server)
    created = sqlite_server.cli_json("cert", "new", client["client_id"], "--ca-signed", "--key", "p256",
                                     "--days", "30", "--out", str(tmp_path))
    assert created["key_type"] == "EC"
    assert stat.S_IMODE(Path(created["key_path"]).stat().st_mode) == 0o600
    listed = sqlite_server.cli_json("cert", "list", client["client_id"])
    assert [c["id"] for c in listed] == [created["id"]]
    claims = _claims(_token(sqlite_server, client["client_id"], created, scope).stdout)
    assert claims["azpacr"] == "2" and claims["roles"] == ["Data.Read"]


def test_new_refuses_to_overwrite_a_key_file(sqlite_server: RunningServer, tmp_path: Path) -> None:
    client, _ = _client(sqlite_server)
    existing = tmp_path / f"{client['display_name']}.key"
    existing.write_text("mine")
    proc = sqlite_server.cli("cert", "new", client["client_id"], "--out", str(tmp_path), check=False)
    assert proc.returncode == 1
    assert "refusing to overwrite" in one_error_line(proc.stderr)
    assert existing.read_text() == "mine"
    assert sqlite_server.cli_json("cert", "list", client["client_id"]) == []


def test_add_registers_a_certificate_and_refuses_one_with_its_key(server: RunningServer, tmp_path: Path) -> None:
    client, scope = _client(server)
    key = generate_client_key("rsa2048")
    cert_pem = self_signed_certificate(key, "worker", now=time.time())
    key_pem = private_key_pem(key)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(cert_pem + key_pem)
    proc = server.cli("cert", "add", client["client_id"], "--cert", str(bundle), check=False)
    assert proc.returncode == 1
    line = one_error_line(proc.stderr)
    assert "private key" in line
    body = key_pem.decode().splitlines()[1]
    assert body not in proc.stderr and body not in proc.stdout
    assert server.cli_json("cert", "list", client["client_id"]) == []

    (tmp_path / "w.pem").write_bytes(cert_pem)
    (tmp_path / "w.key").write_bytes(key_pem)
    added = server.cli_json("cert", "add", client["client_id"], "--cert", str(tmp_path / "w.pem"), "--name", "x")
    assert added["client_id"] == client["client_id"] and added["display_name"] == "x"
    claims = _claims(_token(server, client["client_id"], {"certificate_path": str(tmp_path / "w.pem"),
                                                          "key_path": str(tmp_path / "w.key")}, scope).stdout)
    assert claims["azpacr"] == "2"


def test_revoke_stops_the_certificate(sqlite_server: RunningServer, tmp_path: Path) -> None:
    client, scope = _client(sqlite_server)
    created = sqlite_server.cli_json("cert", "new", client["client_id"], "--key", "ed25519", "--out", str(tmp_path))
    _token(sqlite_server, client["client_id"], created, scope)
    revoked = sqlite_server.cli_json("cert", "revoke", client["client_id"], created["id"])
    assert revoked == {"revoked": True, "client_id": client["client_id"], "id": created["id"]}
    assert sqlite_server.cli_json("cert", "list", client["client_id"]) == []
    proc = _token(sqlite_server, client["client_id"], created, scope, check=False)
    assert proc.returncode == 1
    assert "invalid_client" in one_error_line(proc.stderr)


def test_token_get_credential_options(sqlite_server: RunningServer, tmp_path: Path) -> None:
    client, scope = _client(sqlite_server)
    out = tmp_path / "new" / "creds"  # made on demand, private
    created = sqlite_server.cli_json("cert", "new", client["client_id"], "--out", str(out))
    assert out.is_dir() and (out.stat().st_mode & 0o777) == 0o700
    cid = client["client_id"]
    only_cert = sqlite_server.cli("token", "get", cid, "--cert", created["certificate_path"], "--scope", scope,
                                  check=False)
    assert only_cert.returncode == 2 and "--key" in one_error_line(only_cert.stderr)  # usage mistake
    both = sqlite_server.cli("token", "get", cid, "--secret", "x", "--cert", created["certificate_path"],
                             "--key", created["key_path"], "--scope", scope, check=False)
    assert both.returncode == 2 and "either" in one_error_line(both.stderr)
    other = tmp_path / "other.key"
    other.write_bytes(private_key_pem(generate_client_key("rsa2048")))
    wrong = sqlite_server.cli("token", "get", cid, "--cert", created["certificate_path"], "--key", str(other),
                              "--scope", scope, check=False)
    assert wrong.returncode == 1 and "does not belong" in one_error_line(wrong.stderr)


def test_the_cli_credential_is_a_certificate_and_old_secret_credentials_still_work(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        cli_dir = srv.data_dir / "cli"
        cred = json.loads((cli_dir / "credential.json").read_text())
        assert cred == {"tenant": srv.tenant_id, "client_id": cred["client_id"], "certificate": "cli.pem",
                        "private_key": "cli.key"}
        assert stat.S_IMODE((cli_dir / "cli.key").stat().st_mode) == 0o600
        cli_id = cred["client_id"]
        with Admin(srv) as admin:
            assert admin.api.call("GET", f"/applications/{cli_id}/secrets") == []
            (cert,) = admin.api.call("GET", f"/applications/{cli_id}/certificates")
            assert cert["display_name"] == "keyless init"
            # The previous version's data dir: a client secret in credential.json.
            secret = admin.secret(cli_id)["secret"]
        keep = tmp_path / "kept"
        keep.mkdir()
        for name in ("cli.pem", "cli.key"):
            shutil.move(str(cli_dir / name), str(keep / name))
        (cli_dir / "credential.json").write_text(json.dumps(
            {"tenant": srv.tenant_id, "client_id": cli_id, "client_secret": secret, "expires_at": 0}))
        old = ManagementClient(resolve(srv.data_dir, None, None))
        try:
            assert old.target.client_certificate is None
            assert any(a["client_id"] == cli_id for a in old.call("GET", "/applications"))
        finally:
            old.close()
        assert cli_id in srv.cli("app", "list", "-o", "json").stdout

        # Environment credentials: a certificate and key kept outside any data directory.
        empty = tmp_path / "empty"
        empty.mkdir()
        env = {**os.environ, "KEYLESS_ADMIN_CLIENT_ID": cli_id,
               "KEYLESS_ADMIN_CLIENT_CERTIFICATE": str(keep / "cli.pem"),
               "KEYLESS_ADMIN_CLIENT_KEY": str(keep / "cli.key"), "KEYLESS_TENANT": srv.tenant_id}
        env.pop("KEYLESS_ADMIN_CLIENT_SECRET", None)
        proc = subprocess.run(cli_command("app", "list", "-o", "json", "--data-dir", str(empty), "--server", srv.url,
                                          "--ca", srv.ca), env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert cli_id in proc.stdout
    finally:
        stop_server(srv)
