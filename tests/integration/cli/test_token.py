"""`keyless token get|decode`: a plain OAuth client that needs no admin credential."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest

from tests.integration.cli.helpers import one_error_line
from tests.support.certs import b64u_json
from tests.support.server import Admin, RunningServer


def _client(srv: RunningServer) -> tuple[str, str, str]:
    uri = f"api://tok-{uuid.uuid4().hex[:6]}"
    with Admin(srv) as admin:
        client, secret = admin.client_with_role(uri, "Data.Read")
    return client["client_id"], secret, f"{uri}/.default"


def test_get_prints_the_server_response_and_reads_the_secret_from_stdin(server: RunningServer) -> None:
    cid, secret, scope = _client(server)
    proc = server.cli("token", "get", cid, "--secret", "-", "--scope", scope, input=secret + "\n")
    body = json.loads(proc.stdout)
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    # printed as the server sent it: compact, not re-indented
    assert "\n" not in proc.stdout.strip()
    assert proc.stderr == ""
    decoded = server.cli_json("token", "decode", body["access_token"])
    assert decoded["verified"] is False
    assert decoded["header"]["typ"] == "at+jwt"
    assert decoded["claims"]["appid"] == cid
    assert decoded["claims"]["roles"] == ["Data.Read"]


def test_basic_auth_and_secret_from_the_environment(sqlite_server: RunningServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cid, secret, scope = _client(sqlite_server)
    basic = sqlite_server.cli_json("token", "get", cid, "--secret", secret, "--scope", scope, "--basic")
    assert basic["token_type"] == "Bearer"
    monkeypatch.setenv("KEYLESS_CLIENT_SECRET", secret)
    from_env = sqlite_server.cli_json("token", "get", cid, "--scope", scope)
    assert from_env["token_type"] == "Bearer"


def test_no_secret_anywhere_is_an_error(sqlite_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYLESS_CLIENT_SECRET", raising=False)
    cid, _, scope = _client(sqlite_server)
    proc = sqlite_server.cli("token", "get", cid, "--scope", scope, check=False)
    assert proc.returncode == 1
    assert "KEYLESS_CLIENT_SECRET" in one_error_line(proc.stderr)


def test_works_without_any_admin_credential(sqlite_server: RunningServer, tmp_path: Path) -> None:
    """Only the server URL and CA: an empty data directory, no cli/credential.json."""
    cid, secret, scope = _client(sqlite_server)
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = sqlite_server.cli("token", "get", cid, "--secret", secret, "--scope", scope, "--data-dir", str(empty),
                             "--server", sqlite_server.url, "--ca", sqlite_server.ca)
    assert json.loads(proc.stdout)["token_type"] == "Bearer"


def test_wrong_secret_is_one_line_without_the_secret(sqlite_server: RunningServer) -> None:
    cid, secret, scope = _client(sqlite_server)
    wrong = secret[:-8] + "AAAAAAAA"
    proc = sqlite_server.cli("token", "get", cid, "--secret", wrong, "--scope", scope, check=False)
    assert proc.returncode == 1
    line = one_error_line(proc.stderr)
    assert line == "error: client authentication failed (invalid_client)"
    assert wrong not in proc.stderr and secret not in proc.stderr
    assert proc.stdout == ""


def test_decode_is_labelled_unverified_and_rejects_garbage(sqlite_server: RunningServer) -> None:
    cid, secret, scope = _client(sqlite_server)
    token = sqlite_server.cli_json("token", "get", cid, "--secret", secret, "--scope", scope)["access_token"]
    table = sqlite_server.cli("token", "decode", "-", "--output", "table", input=token).stdout
    assert table.splitlines()[0].startswith("UNVERIFIED")
    assert f"appid: {cid}" in table
    assert "exp: " in table and "Z)" in table  # epoch plus a readable UTC time
    for garbage in ("not-a-jwt", "a.b.c", "e30.W10.x"):
        proc = sqlite_server.cli("token", "decode", garbage, check=False)
        assert proc.returncode == 1, garbage
        assert "not a JWT" in one_error_line(proc.stderr)


def test_decode_of_hostile_numbers_is_one_line_or_a_plain_value_never_a_traceback(
        sqlite_server: RunningServer) -> None:
    head = b64u_json({"alg": "none"})
    for exp_text in ("NaN", "1e400", "1" + "0" * 400):
        payload = base64.urlsafe_b64encode(f'{{"exp":{exp_text}}}'.encode()).rstrip(b"=").decode()
        proc = sqlite_server.cli("token", "decode", f"{head}.{payload}.", "--output", "table", check=False)
        assert proc.returncode == 1, exp_text
        assert one_error_line(proc.stderr) == (
            "error: not a JWT: the payload is not valid JOSE JSON (JSON number is "
            + ("not finite)" if exp_text == "NaN" else "out of range)"))
    for exp, shown in ((-5, "-5 (not a valid time: is out of range)"),
                      (True, "True (not a valid time: is not a NumericDate)")):
        table = sqlite_server.cli("token", "decode", f"{head}.{b64u_json({'exp': exp})}.", "--output",
                                  "table").stdout
        assert f"exp: {shown}" in table
