"""One identity for every replica (docs/deployment.md): the issuer comes from the installation's
recorded public URL, not from the port a replica happens to listen on, and a replica started with a
different URL refuses to start instead of issuing tokens other replicas' validators would refuse."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import (
    RunningServer,
    cli_command,
    free_port,
    postgres_database,
    require_postgres,
    start_replica,
    start_server,
    stop_server,
)


def _issuer_seen_at(server: RunningServer) -> str:
    with server.http() as http:
        doc = http.get(f"{server.url}/{server.tenant_id}/v2.0/.well-known/openid-configuration").json()
    issuer: str = doc["issuer"]
    return issuer


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[RunningServer]:
    require_postgres()
    with postgres_database() as url:
        first = start_server(tmp_path, database_url=url)
        try:
            yield first
        finally:
            stop_server(first)


def test_a_replica_on_another_port_announces_the_installations_issuer(pg_server: RunningServer,
                                                                      tmp_path: Path) -> None:
    replica = start_replica(pg_server, tmp_path)  # no --public-url: the data directory's recorded URL
    try:
        assert _issuer_seen_at(replica) == _issuer_seen_at(pg_server) == pg_server.issuer
    finally:
        stop_server(replica)


def test_a_replica_with_a_different_public_url_refuses_to_start(pg_server: RunningServer, tmp_path: Path) -> None:
    other = f"https://127.0.0.1:{free_port()}"
    assert pg_server.database_url is not None
    done = subprocess.run(
        cli_command("serve", "--data-dir", str(pg_server.data_dir), "--port", str(free_port()),
                    "--vault-port", str(free_port()), "--database-url", pg_server.database_url,
                    "--public-url", other),
        env={**os.environ, **pg_server.env}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"error: this database's public URL is {pg_server.url} but this server would announce {other}: every "
        f"replica must use the same one (start with --public-url {pg_server.url}, or move the installation "
        "with `keyless db set-public-url URL`)\n"
    )
    assert _issuer_seen_at(pg_server) == pg_server.issuer  # the running replica is untouched


def test_set_public_url_moves_the_installation_deliberately(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    stop_server(server)
    new = f"https://127.0.0.1:{free_port()}"
    moved = server.cli("db", "set-public-url", new, "--data-dir", str(server.data_dir))
    assert json.loads(moved.stdout) == {"public_url": new, "data_dir": str(server.data_dir.resolve())}
    assert json.loads((server.data_dir / "config.json").read_text())["server_url"] == new
    refused = server.cli("db", "set-public-url", "http://plain.example", "--data-dir", str(server.data_dir),
                         check=False)
    assert (refused.returncode, refused.stderr) == (
        1, "error: the public URL must be https://HOST[:PORT][/PATH] with no query or fragment\n")
    replica = start_replica(server, tmp_path)  # listens elsewhere, announces the moved URL
    try:
        assert _issuer_seen_at(replica) == f"{new}/{server.tenant_id}/v2.0"
    finally:
        stop_server(replica)
