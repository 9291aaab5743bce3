"""What the vault promises when things go wrong: a crash loses no acknowledged write (SQLite and
PostgreSQL), and a ciphertext moved to another row does not decrypt — the read fails, safely."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import (
    Admin,
    RunningServer,
    postgres_database,
    require_postgres,
    restart_server,
    start_server,
    stop_server,
)
from tests.support.vault import VaultHttp, new_user, new_vault, vault_token


@pytest.fixture(params=["sqlite", "postgresql"])
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    if request.param == "postgresql":
        require_postgres()
        with postgres_database() as url:
            srv = start_server(tmp_path, database_url=url)
            try:
                yield srv
            finally:
                stop_server(srv)
        return
    srv = start_server(tmp_path)
    try:
        yield srv
    finally:
        stop_server(srv)


def test_sigkill_during_writes_loses_no_acknowledged_version(own_server: RunningServer) -> None:
    server = own_server
    with Admin(server) as admin:
        vault = new_vault(admin)
        user = new_user(admin, vault)
    token = vault_token(server, user)
    acked: list[tuple[str, str, str]] = []  # (name, version, value)
    stop = threading.Event()

    def writer(worker: int) -> None:
        with VaultHttp(server, vault, token) as kv:
            i = 0
            while not stop.is_set():
                name, value = f"w{worker}-{i % 5}", f"value-{worker}-{i}-" + "x" * (i % 300)
                try:
                    resp = kv.request("PUT", f"/secrets/{name}", json={"value": value})
                except httpx.HTTPError:
                    return  # the server is gone: this write was never acknowledged
                if resp.status_code == 200:
                    acked.append((name, resp.json()["id"].rsplit("/", 1)[1], value))
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGKILL)  # no shutdown path runs
    server.proc.wait()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 200
    restart_server(server)
    with VaultHttp(server, vault, token) as kv:
        for name, version, value in acked:
            resp = kv.request("GET", f"/secrets/{name}/{version}")
            assert resp.status_code == 200, (name, version, resp.text)
            assert resp.json()["value"] == value


def test_swapped_ciphertexts_fail_safely(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        with Admin(server) as admin:
            vault = new_vault(admin)
            user = new_user(admin, vault)
        with VaultHttp(server, vault, vault_token(server, user)) as kv:
            for name, value in (("alpha", "value-of-alpha"), ("beta", "value-of-beta")):
                assert kv.request("PUT", f"/secrets/{name}", json={"value": value}).status_code == 200
            with sqlite3.connect(server.data_dir / "keyless.db") as db:
                rows = db.execute("SELECT v.secret_id, v.version, v.wrapped_dek, v.ciphertext FROM vault_versions v "
                                  "JOIN vault_secrets s ON s.id = v.secret_id WHERE s.name IN ('alpha', 'beta') "
                                  "ORDER BY s.name").fetchall()
                (a_id, a_ver, a_dek, a_ct), (b_id, b_ver, b_dek, b_ct) = rows
                for secret_id, version, dek, ct in ((a_id, a_ver, b_dek, b_ct), (b_id, b_ver, a_dek, a_ct)):
                    db.execute("UPDATE vault_versions SET wrapped_dek = ?, ciphertext = ? WHERE secret_id = ? AND "
                               "version = ?", (dek, ct, secret_id, version))
            for name in ("alpha", "beta"):
                resp = kv.request("GET", f"/secrets/{name}/")
                assert resp.status_code == 500
                assert resp.json() == {"error": {"code": "SecretUnreadable",
                                                 "message": "the stored secret value failed its integrity check"}}
                assert "value-of" not in resp.text
        assert "vault_unreadable" in server.logs() and "value-of" not in server.logs()
    finally:
        stop_server(server)
