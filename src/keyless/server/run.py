"""Run the server over HTTPS with uvicorn: TLS 1.2 minimum, AEAD suites only (catalog A20, N01, N02); slow
and idle clients bounded by `keyless.listen` on both the server and the vault port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn

from keyless.clock import Clock
from keyless.errors import ConfigurationError
from keyless.listen import Guard, bound_tls_handshakes
from keyless.server.app import create_app
from keyless.server.context import ServerContext
from keyless.server.datadir import DataDir, check_private, load_kek, tls_key_password
from keyless.server.logs import configure
from keyless.server.observe import RouteObserver
from keyless.server.settings import ServerSettings
from keyless.server.token_protocol import token_protocol
from keyless.server.vault.app import VaultApi

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def tls_config(config: uvicorn.Config) -> None:
    config.load()
    assert config.ssl is not None
    config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    config.ssl.set_ciphers(TLS12_CIPHERS)
    config.ssl.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port} for the vault: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def run_server(main: Coroutine[Any, Any, None]) -> None:
    """Run the server's main coroutine on uvloop where it is installed (it comes with
    `uvicorn[standard]`; measured +5-10% tokens per CPU-second), else on the stdlib loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is part of the server extra
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def serve(settings: ServerSettings, *, clock: Clock | None = None,
                on_ready: Callable[[ServerContext], None] | None = None) -> None:
    configure(settings.log_level)
    data = DataDir(settings.data_dir)
    kek = load_kek(data, allow_loose=settings.insecure_world_readable_files)
    check_private(data.tls_key, allow_loose=settings.insecure_world_readable_files)
    limits = settings.listener_limits()  # slow and idle clients, on both ports (docs/security.md)
    ctx = await ServerContext.open(settings, clock=clock)
    observer = RouteObserver("main", access_log=settings.access_log)
    vault = (VaultApi(ctx), RouteObserver("vault", access_log=settings.access_log)) if settings.vault_enabled else None
    config = uvicorn.Config(
        create_app(ctx, observer=observer, vault=vault),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(data.tls_cert),
        ssl_keyfile=str(data.tls_key),
        ssl_keyfile_password=tls_key_password(kek),
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,
        lifespan="on",
        http=token_protocol(ctx, Guard(limits), observer, vault),  # token POSTs, vault reads: the listener's own
        h11_max_incomplete_event_size=16 * 1024,
        **limits.uvicorn_options(),
    )
    tls_config(config)
    bound_tls_handshakes(asyncio.get_running_loop(), limits.header_timeout)
    server = uvicorn.Server(config)
    sockets = [config.bind_socket()]
    if settings.vault_enabled:
        # The vault's own port, on the same server and TLS context; `create_app` routes by local port.
        if settings.vault_port in (0, settings.port):
            raise ConfigurationError("the vault port must be a fixed port other than the server's")
        sockets.append(_bind(settings.host, settings.vault_port))
    try:
        if on_ready is not None:
            async def announce() -> None:
                while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event for "listening"
                    await asyncio.sleep(0.05)
                on_ready(ctx)

            waiter = asyncio.create_task(announce())
            await server.serve(sockets=sockets)
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
        else:
            await server.serve(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
        await ctx.engine.dispose()
