"""A real `keyless agent` process on loopback, enrolled against a real server, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import Admin, RunningServer, cli_command, free_port


@dataclass
class RunningAgent:
    proc: subprocess.Popen[bytes]
    port: int
    socket: Path
    state_dir: Path
    log_path: Path
    host: dict[str, Any]  # `keyless host add` output (system_identity, id, name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def imds(self) -> str:
        return f"{self.url}/metadata/identity/oauth2/token"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict[str, Any]:
        resp = httpx.get(f"{self.url}/agent/status", headers={"Metadata": "true"}, timeout=5)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def identity_header(self) -> str:
        return (self.state_dir / "identity-header").read_text().strip()

    def get(self, resource: str, **params: str) -> httpx.Response:
        return httpx.get(self.imds, params={"api-version": "2018-02-01", "resource": resource, **params},
                         headers={"Metadata": "true"}, timeout=10)


def start_agent(server: RunningServer, tmp: Path, *, join_token: str, host: dict[str, Any],
                extra: tuple[str, ...] = (), port: int | None = None) -> RunningAgent:
    port = port or free_port()
    state = tmp / "agent-state"
    sock = tmp / "agent.sock"
    log_path = tmp / f"agent-{uuid.uuid4().hex[:6]}.log"
    args = cli_command("agent", "--server", server.url, "--ca", server.ca, "--join-token", join_token,
                       "--state-dir", str(state), "--listen", f"127.0.0.1:{port}", "--socket", str(sock),
                       "--poll", "1", *extra)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    agent = RunningAgent(proc=proc, port=port, socket=sock, state_dir=state, log_path=log_path, host=host)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"keyless agent exited: {agent.logs()}")
        try:
            agent.status()
            return agent
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_agent(agent)
            raise RuntimeError(f"keyless agent did not start: {agent.logs()}")
        time.sleep(0.1)


def stop_agent(agent: RunningAgent) -> None:
    if agent.proc.poll() is None:
        agent.proc.send_signal(signal.SIGTERM)
        try:
            agent.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            agent.proc.kill()
            agent.proc.wait()


def host_with_resource(server: RunningServer, role: str = "Orders.Read") -> tuple[dict[str, Any], str]:
    """A new host (with its join token) whose system identity holds `role` on a new resource."""
    uri = f"api://orders-{uuid.uuid4().hex[:6]}"
    with Admin(server) as admin:
        admin.app(f"orders-{uuid.uuid4().hex[:6]}", identifier_uri=uri, roles=(role,))
        host = dict(admin.api.call("POST", "/hosts", json_body={"name": f"host-{uuid.uuid4().hex[:6]}"}))
        admin.grant(host["system_identity"]["client_id"], uri, role)
    return host, uri


def assigned_identity(admin: Admin, host: dict[str, Any], uri: str, *, prefix: str = "id",
                      role: str = "Orders.Read") -> dict[str, Any]:
    """A new user-assigned identity, assigned to `host` and granted `role` on `uri`."""
    identity = dict(admin.api.call("POST", "/identities", json_body={"name": f"{prefix}-{uuid.uuid4().hex[:6]}"}))
    admin.api.call("PUT", f"/identities/{identity['client_id']}/hosts/{host['id']}")
    admin.grant(identity["client_id"], uri, role)
    return identity
