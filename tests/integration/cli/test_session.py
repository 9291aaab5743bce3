"""The CLI keeps its management token on disk (cli/session.py, issue 12 item 4): commands in a row sign
in once, the file is the owner's alone, and a token the server no longer accepts is replaced."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from keyless.cli.session import TOKEN_FILE, TokenCacheFile
from tests.integration.cli.helpers import epoch
from tests.support.server import RunningServer


def _cli(server: RunningServer) -> tuple[Path, dict[str, str]]:
    cli_dir = server.data_dir / "cli"
    return cli_dir, json.loads((cli_dir / "credential.json").read_text())


def _sign_ins(server: RunningServer, client_id: str, since: float) -> list[dict[str, object]]:
    rows = json.loads(server.cli("log", "signins", "--client", client_id, "--limit", "1000", "-o", "json").stdout)
    return [r for r in rows if epoch(str(r["time"])) >= since]


def test_commands_in_a_row_sign_in_once(sqlite_server: RunningServer) -> None:
    cli_dir, credential = _cli(sqlite_server)
    (cli_dir / TOKEN_FILE).unlink(missing_ok=True)
    start = float(int(time.time()))
    for _ in range(3):
        sqlite_server.cli("app", "list", "-o", "json")
    assert stat.S_IMODE((cli_dir / TOKEN_FILE).stat().st_mode) == 0o600
    assert len(_sign_ins(sqlite_server, credential["client_id"], start)) == 1


def test_a_token_the_server_refuses_is_replaced(sqlite_server: RunningServer) -> None:
    cli_dir, credential = _cli(sqlite_server)
    material = b"certificate:" + (cli_dir / credential["certificate"]).read_bytes()
    cache = TokenCacheFile(cli_dir / TOKEN_FILE, sqlite_server.url, credential["tenant"], credential["client_id"],
                           material)
    cache.write("not.a.token", time.time() + 3600)
    assert cache.read(time.time()) == "not.a.token"  # the command below will try it first
    rows = json.loads(sqlite_server.cli("app", "list", "-o", "json").stdout)
    assert isinstance(rows, list)
    assert cache.read(time.time()) not in (None, "not.a.token")


def test_a_token_close_to_expiry_or_for_another_credential_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    mine = TokenCacheFile(path, "https://k.example", "t", "c", b"certificate:A")
    mine.write("tok", time.time() + 60)
    assert mine.read(time.time()) is None  # less than the refresh margin left
    mine.write("tok", time.time() + 3600)
    assert mine.read(time.time()) == "tok"
    assert TokenCacheFile(path, "https://k.example", "t", "c", b"certificate:B").read(time.time()) is None
    assert TokenCacheFile(path, "https://other.example", "t", "c", b"certificate:A").read(time.time()) is None
    path.write_text("{not json")
    assert mine.read(time.time()) is None
