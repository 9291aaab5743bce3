"""A real `keyless serve` process on loopback over TLS, for integration and compat tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PG_DSN = os.environ.get("KEYLESS_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "keyless.cli.main", *args]


def postgres_available() -> str | None:
    """None when PostgreSQL answers; otherwise the reason it does not."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return None
    except OSError as exc:
        return f"PostgreSQL not reachable on 127.0.0.1:5432 ({exc})"


def require_postgres() -> None:
    """Skip (with the reason) where PostgreSQL does not answer; in CI, fail instead: there it must run."""
    import pytest

    reason = postgres_available()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
    pytest.skip(reason)


async def end_other_connections(url: str) -> None:
    """What a PostgreSQL restart or failover does to a server's idle connections to the database at
    `url`: every other connection to it is ended (`pg_terminate_backend`)."""
    import asyncio

    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        ended = await conn.fetch("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await conn.close()
    assert ended and all(r[0] for r in ended), "no connection to end"
    await asyncio.sleep(0.1)  # the termination reaches the idle connections


@contextmanager
def postgres_database() -> Iterator[str]:
    """A uniquely named, empty database that is dropped afterwards."""
    import asyncio

    import asyncpg

    name = f"keyless_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN + "/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_DSN}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Installation:
    """What a running server and a cluster of replicas both are: a public URL, a data directory (with
    the CA) and a tenant; their issuer and token endpoint follow from those."""

    url: str
    data_dir: Path
    tenant_id: str

    @property
    def ca(self) -> str:
        return str(self.data_dir / "ca" / "ca.pem")

    @property
    def issuer(self) -> str:
        return f"{self.url}/{self.tenant_id}/v2.0"

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/{self.tenant_id}/oauth2/v2.0/token"


@dataclass
class RunningServer(Installation):
    url: str
    data_dir: Path
    tenant_id: str
    database_url: str | None
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    vault_port: int = -1

    @property
    def vault_url(self) -> str:
        """The default vault, at the root of the vault port."""
        return f"https://127.0.0.1:{self.vault_port}"

    @property
    def vault_resource(self) -> str:
        return f"https://vault.localhost:{self.vault_port}"

    def http(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=self.ca), timeout=10)

    def cli(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env, "KEYLESS_DATA_DIR": str(self.data_dir)}
        proc = subprocess.run(cli_command(*args), env=env, capture_output=True, text=True, input=input,
                              timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"keyless {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--output", "json").stdout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(tmp: Path, *, database_url: str | None = None, env: dict[str, str] | None = None,
                 signing_alg: str = "RS256") -> RunningServer:
    port = free_port()
    data_dir = tmp / "data"
    extra_env = dict(env or {})
    full_env = {**os.environ, **extra_env}
    init = cli_command("init", "--data-dir", str(data_dir), "--port", str(port), "--output", "json",
                       "--signing-alg", signing_alg)
    if database_url:
        init += ["--database-url", database_url]
    done = subprocess.run(init, env=full_env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"keyless init failed: {done.stderr}")
    info = json.loads(done.stdout)
    server = RunningServer(url=f"https://127.0.0.1:{port}", data_dir=data_dir, tenant_id=info["tenant_id"],
                           database_url=database_url, proc=None,  # type: ignore[arg-type]
                           log_path=tmp / "server.log", env=extra_env, vault_port=free_port())
    return restart_server(server)


def restart_server(server: RunningServer) -> RunningServer:
    """(Re)start `keyless serve` on the server's data directory and ports; waits until it is ready."""
    port = str(server.url.rsplit(":", 1)[1])
    serve = cli_command("serve", "--data-dir", str(server.data_dir), "--port", port,
                        "--vault-port", str(server.vault_port))
    if server.database_url:
        serve += ["--database-url", server.database_url]
    with server.log_path.open("ab") as log:
        server.proc = subprocess.Popen(serve, env={**os.environ, **server.env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(server)
    except BaseException:
        stop_server(server)  # never leak a server process, whatever went wrong
        raise
    return server


def _wait_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + 30
    with server.http() as http:
        while True:
            if server.proc.poll() is not None:
                raise RuntimeError(f"keyless serve exited: {server.logs()}")
            try:
                if http.get(f"{server.url}/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"keyless serve did not become ready: {server.logs()}")
            time.sleep(0.1)


def stop_server(server: RunningServer) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def launch_replica(data_dir: Path, tmp: Path, log_name: str, *, tenant_id: str, database_url: str | None,
                   env: dict[str, str], extra: tuple[str, ...] = ()) -> RunningServer:
    """One `keyless serve` on an existing installation (`data_dir`, `database_url`), on ports of its
    own, ready to answer; stopped again if it never gets ready."""
    port, vault_port = free_port(), free_port()
    cmd = cli_command("serve", "--data-dir", str(data_dir), "--port", str(port), "--vault-port", str(vault_port),
                      *extra)
    if database_url:
        cmd += ["--database-url", database_url]
    log_path = tmp / log_name.format(port=port)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    replica = RunningServer(url=f"https://127.0.0.1:{port}", data_dir=data_dir, tenant_id=tenant_id,
                            database_url=database_url, proc=proc, log_path=log_path, env=env, vault_port=vault_port)
    try:
        _wait_ready(replica)
    except BaseException:
        stop_server(replica)
        raise
    return replica


def start_replica(first: RunningServer, tmp: Path, *extra: str) -> RunningServer:
    """Another `keyless serve` on `first`'s data directory and database, on ports of its own: a replica.
    It announces the installation's public URL (docs/deployment.md), not its own address."""
    return launch_replica(first.data_dir, tmp, "replica-{port}.log", tenant_id=first.tenant_id,
                          database_url=first.database_url, env=first.env, extra=extra)


@contextlib.contextmanager
def replicas_on_postgres(tmp: Path, env: dict[str, str] | None = None) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two `keyless serve` replicas on one fresh PostgreSQL database (the scaled-out deployment of
    docs/deployment.md); skipped, or under CI=true failed, where PostgreSQL does not answer."""
    require_postgres()
    with postgres_database() as url:
        first = start_server(tmp, database_url=url, env=env)
        try:
            second = start_replica(first, tmp)
            try:
                yield first, second
            finally:
                stop_server(second)
        finally:
            stop_server(first)


class Admin:
    """Directory setup for tests through the real management API (the CLI's own client)."""

    def __init__(self, server: RunningServer) -> None:
        from keyless.cli.common import ManagementClient, resolve

        self.server = server
        self.api = ManagementClient(resolve(server.data_dir, None, None))

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def app(self, name: str, *, identifier_uri: str | None = None, roles: tuple[str, ...] = (),
            open_to_tenant: bool = False) -> dict[str, Any]:
        body = {"display_name": name, "identifier_uri": identifier_uri, "roles": list(roles),
                "open_to_tenant": open_to_tenant}
        return dict(self.api.call("POST", "/applications", json_body=body))

    def secret(self, client_id: str, expires_in: int | None = None) -> dict[str, Any]:
        return dict(self.api.call("POST", f"/applications/{client_id}/secrets", json_body={"expires_in": expires_in}))

    def grant(self, client_id: str, resource: str, role: str) -> dict[str, Any]:
        return dict(self.api.call("POST", "/grants", json_body={"client_id": client_id, "resource": resource,
                                                                 "role": role}))

    def client_with_role(self, resource_uri: str, role: str = "Data.Read") -> tuple[dict[str, Any], str]:
        """A resource with `role`, a client granted it, and the client's secret."""
        self.app(f"res-{uuid.uuid4().hex[:6]}", identifier_uri=resource_uri, roles=(role,))
        client = self.app(f"client-{uuid.uuid4().hex[:6]}")
        secret = self.secret(client["client_id"])["secret"]
        self.grant(client["client_id"], resource_uri, role)
        return client, secret
