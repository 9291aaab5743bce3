"""A SQLite database serves one `keyless serve` process (docs/deployment.md): that process decides
single-use values in its memory (`keyless.store.one_time_memory`), so a second server on the same
database file would accept an assertion the first already took. It stops at start with one line."""

from __future__ import annotations

import os
import subprocess

from tests.support.server import RunningServer, cli_command, free_port


def test_a_second_server_on_the_same_sqlite_database_stops_at_start(sqlite_server: RunningServer) -> None:
    done = subprocess.run(
        cli_command("serve", "--data-dir", str(sqlite_server.data_dir), "--port", str(free_port()),
                    "--vault-port", str(free_port())),
        env={**os.environ, **sqlite_server.env}, capture_output=True, text=True, timeout=60,
    )
    database = (sqlite_server.data_dir / "keyless.db").resolve()
    assert (done.returncode, done.stderr) == (
        1, f"error: another Keyless server is using the SQLite database {database}: a SQLite database serves one "
           "server process (run replicas on PostgreSQL)\n")
    with sqlite_server.http() as http:
        assert http.get(f"{sqlite_server.url}/readyz").status_code == 200  # the first one is untouched
