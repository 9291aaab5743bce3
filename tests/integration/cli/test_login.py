"""`keyless login` / `keyless logout`: a developer's own identity on a workstation, which
DefaultCredential uses as its last link; logout revokes it."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from keyless.client import CertificateCredential, DefaultCredential, OAuthError
from tests.integration.cli.helpers import one_error_line
from tests.support.server import Admin, RunningServer, free_port


def test_login_gives_default_credential_a_developer_identity(sqlite_server: RunningServer, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    profile = tmp_path / "home" / ".config" / "keyless" / "developer.json"
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEYLESS_DEVELOPER_PROFILE", str(profile))
    monkeypatch.setenv("KEYLESS_AGENT_SOCKET", str(tmp_path / "no-agent.sock"))
    monkeypatch.setenv("KEYLESS_AGENT_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    uri = f"api://dev-{uuid.uuid4().hex[:6]}"
    with Admin(sqlite_server) as admin:
        admin.app(f"dev-api-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=("Data.Read",))
        dev = admin.app(f"alice-dev-{uuid.uuid4().hex[:6]}")
        admin.grant(dev["client_id"], uri, "Data.Read")
    env = {"KEYLESS_DEVELOPER_PROFILE": str(profile)}
    sqlite_server.env.update(env)
    try:
        out = sqlite_server.cli_json("login", dev["client_id"], "--days", "7")
        assert out["client_id"] == dev["client_id"] and out["profile"] == str(profile)
        assert profile.stat().st_mode & 0o777 == 0o600
        assert (profile.parent / "developer.key").stat().st_mode & 0o777 == 0o600
        again = sqlite_server.cli("login", dev["client_id"], check=False)
        assert again.returncode == 1 and "already logged in" in one_error_line(again.stderr)

        with DefaultCredential() as cred:
            token = cred.get_token(f"{uri}/.default")
        assert token.token.count(".") == 2

        keep = tmp_path / "kept"
        shutil.copytree(profile.parent, keep)
        sqlite_server.cli("logout")
        assert not profile.exists() and not (profile.parent / "developer.key").exists()
        saved = json.loads((keep / "developer.json").read_text())
        with CertificateCredential(saved["tenant"], saved["client_id"], certificate_path=keep / "developer.pem",
                                   private_key_path=keep / "developer.key", authority=saved["authority"],
                                   ca=saved["ca"]) as revoked, pytest.raises(OAuthError) as caught:
            revoked.get_token(f"{uri}/.default")
        assert caught.value.error == "invalid_client"
        out_again = sqlite_server.cli("logout", check=False)
        assert out_again.returncode == 1 and "not logged in" in one_error_line(out_again.stderr)
    finally:
        for name in env:
            sqlite_server.env.pop(name, None)
