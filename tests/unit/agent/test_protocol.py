"""The agent's one uvicorn adapter (keyless.agent.protocol.PeerProtocol), run in a real uvicorn server:
a Unix-socket caller's kernel credentials, and a loopback TCP caller's uid, reach the ASGI scope, so
the endpoints can decide per local user (docs/agent.md) — and keep doing so after a uvicorn upgrade."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from keyless.agent.protocol import PeerProtocol
from keyless.agent.runtime import unix_listener
from keyless.listen import ListenerLimits, guarded


async def _echo_extensions(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                           send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    extensions = scope.get("extensions") or {}
    peer = extensions.get("keyless.peer")
    body = json.dumps({"peer": None if peer is None else [peer.pid, peer.uid, peer.gid],
                       "tcp_uid": extensions.get("keyless.tcp_uid")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def _serving(sockets: list[socket.socket]) -> AsyncIterator[None]:
    config = uvicorn.Config(_echo_extensions, http=guarded(ListenerLimits(), PeerProtocol), lifespan="off",
                            access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


def test_a_unix_socket_caller_s_credentials_reach_the_scope(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"

    async def run() -> dict[str, Any]:
        async with _serving([unix_listener(path)]):
            transport = httpx.AsyncHTTPTransport(uds=str(path))
            async with httpx.AsyncClient(transport=transport) as http:
                return dict((await http.get("http://localhost/")).json())

    seen = asyncio.run(run())
    assert seen["peer"] == [os.getpid(), os.getuid(), os.getgid()]


def test_a_loopback_tcp_caller_is_named_by_uid_where_the_kernel_tells() -> None:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    tcp.setblocking(False)
    port = tcp.getsockname()[1]

    async def run() -> dict[str, Any]:
        async with _serving([tcp]), httpx.AsyncClient() as http:
            return dict((await http.get(f"http://127.0.0.1:{port}/")).json())

    seen = asyncio.run(run())
    assert seen["peer"] is None
    # /proc/net/tcp names the caller on Linux; elsewhere the agent falls back to no uid (never a wrong one).
    assert seen["tcp_uid"] == (os.getuid() if Path("/proc/net/tcp").exists() else None)
