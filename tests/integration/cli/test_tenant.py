"""`keyless tenant show|set`: settings change what the token endpoint does. Every test restores what it
changes: the servers are shared by the whole session."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.cli.helpers import one_error_line
from tests.support.server import Admin, RunningServer


def as_duration(seconds: int) -> str:
    """Seconds in the CLI's duration syntax (at most six digits)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds % size == 0 and seconds // size < 10**6:
            return f"{seconds // size}{unit}"
    raise AssertionError(seconds)


def test_show_and_set_token_lifetime(server: RunningServer) -> None:
    tenant = server.cli_json("tenant", "show")
    assert tenant["id"] == server.tenant_id
    assert tenant["issuer"] == server.issuer
    assert tenant["signing_alg"] in {"RS256", "ES256"}
    original = tenant["token_lifetime"]
    uri = f"api://ten-{uuid.uuid4().hex[:6]}"
    with Admin(server) as admin:
        client, secret = admin.client_with_role(uri)
    try:
        changed = server.cli_json("tenant", "set", "--token-lifetime", "2h")
        assert changed["token_lifetime"] == 7200
        assert server.cli_json("tenant", "show")["token_lifetime"] == 7200
        token = server.cli_json("token", "get", client["client_id"], "--secret", secret,
                                "--scope", f"{uri}/.default")
        assert token["expires_in"] == 7200
    finally:
        server.cli("tenant", "set", "--token-lifetime", as_duration(original))
    assert server.cli_json("tenant", "show")["token_lifetime"] == original


def test_set_secret_limits_and_audience_mode(sqlite_server: RunningServer) -> None:
    before = sqlite_server.cli_json("tenant", "show")
    try:
        changed = sqlite_server.cli_json("tenant", "set", "--default-secret-lifetime", "30d",
                                         "--max-secret-lifetime", "1y", "--assertion-audience", "strict")
        assert changed["default_secret_lifetime"] == 30 * 86400
        assert changed["max_secret_lifetime"] == 365 * 86400
        assert changed["assertion_audience"] == "strict"
        name = f"lim-{uuid.uuid4().hex[:6]}"
        sqlite_server.cli("app", "create", name)
        too_long = sqlite_server.cli("secret", "add", name, "--expires-in", "400d", check=False)
        assert too_long.returncode == 1
        assert "invalid_secret_lifetime" in one_error_line(too_long.stderr)
        table = sqlite_server.cli("tenant", "show", "-o", "table").stdout
        assert "default_secret_lifetime: 2592000 (30d)" in table
    finally:
        sqlite_server.cli("tenant", "set",
                          "--max-secret-lifetime", as_duration(before["max_secret_lifetime"]),
                          "--default-secret-lifetime", as_duration(before["default_secret_lifetime"]),
                          "--assertion-audience", before["assertion_audience"])
    assert sqlite_server.cli_json("tenant", "show") == before


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (("--token-lifetime", "90"), "--token-lifetime", 2),  # malformed: a usage mistake (docs/cli.md)
        (("--token-lifetime", "1m"), "invalid_token_lifetime", 1),  # well-formed, refused by the server
        ((), "nothing to change", 1),
    ],
)
def test_bad_settings_are_one_error_line(sqlite_server: RunningServer, args: tuple[str, ...],
                                         expected: str, code: int) -> None:
    proc = sqlite_server.cli("tenant", "set", *args, check=False)
    assert proc.returncode == code
    assert expected in one_error_line(proc.stderr)
