"""The running agent: credential, entitlements, token cache, background work and listeners.

Background work, one task each: refreshing due tokens (every `refresh_interval`), renewing the host
certificate at half its lifetime, and fetching the host's identities and bindings (`poll_interval`).
When the server says the host's credential is no good any more (the host was removed), the agent
drops every cached token at once and answers as if no identity existed; it keeps polling, so an
outage is never mistaken for removal (only an explicit `invalid_client` is).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
from pathlib import Path
from typing import Any

import uvicorn

from keyless.agent import credential
from keyless.agent.cache import AgentTokenCache
from keyless.agent.credential import HostCredential
from keyless.agent.endpoints import create_endpoints
from keyless.agent.entitlements import Entitlements
from keyless.agent.protocol import PeerProtocol
from keyless.agent.ratelimit import CallerLimiter
from keyless.agent.server_api import ServerApi, ServerRefused, ServerUnavailable
from keyless.agent.settings import AgentSettings
from keyless.agent.state import IDENTITY_HEADER_FILE, StateDir
from keyless.client.core import Token
from keyless.clock import Clock, SystemClock
from keyless.errors import ConfigurationError
from keyless.listen import guarded

log = logging.getLogger("keyless.agent")


class Agent:
    def __init__(self, settings: AgentSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.state = StateDir(settings.state_dir)
        self.entitlements = Entitlements()
        self.limiter = CallerLimiter(settings.rate, settings.burst, self.clock)
        self.revoked = False
        self.server_reachable: bool | None = None
        self.last_poll: float | None = None
        self.renewals = 0
        self.credential: HostCredential | None = None
        self.api: ServerApi | None = None
        self.cache = AgentTokenCache(self._fetch, self.clock)
        self.identity_tokens = AgentTokenCache(self._fetch_identity_token, self.clock)  # per (identity, audience)
        self._header: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._confirming: asyncio.Task[None] | None = None
        self._sockets: list[socket.socket] = []
        self.bound_port: int | None = None
        names = {b"127.0.0.1", b"localhost", b"[::1]"}
        address = settings.listen_address()
        port = address[1] if address else 0
        extra = {h.encode("ascii").lower() for h in settings.allowed_hosts}
        self.allowed_hosts = frozenset(names | {n + b":" + str(port).encode() for n in names} | extra)

    # -- what the endpoints use ---------------------------------------------------------------------
    def identity_header(self) -> str:
        if self._header is None:
            self._header = self.state.identity_header()
        return self._header

    def status(self) -> dict[str, Any]:
        cred = self.credential
        if self.revoked:
            state = "revoked"
        elif self.server_reachable is False:
            state = "degraded"  # serving cached tokens; refreshing will resume when the server answers
        else:
            state = "ok"
        return {
            "state": state,
            "host": cred.host.host_name if cred else None,
            "host_id": cred.host.host_id if cred else None,
            "tenant_id": cred.host.tenant_id if cred else None,
            "server": cred.host.server if cred else None,
            "server_reachable": self.server_reachable,
            "certificate_not_after": cred.material.not_after if cred else None,
            "certificate_renew_at": cred.material.renew_at if cred else None,
            "renewals": self.renewals,
            "identities": [{"name": i.name, "kind": i.kind, "client_id": i.client_id}
                           for i in self.entitlements.identities],
            "bindings": len(self.entitlements.bindings),
            "identity_header_file": str(self.state.path / IDENTITY_HEADER_FILE),
            "cached_tokens": len(self.cache),
            "cached_identity_tokens": len(self.identity_tokens),
            "last_poll": self.last_poll,
            "last_token_success": self.cache.last_success,
            "last_token_failure": self.cache.last_failure,
        }

    async def _fetch(self, client_id: str, resource: str) -> Token:
        return await self._ask(client_id, resource, identity_token=False)

    async def _fetch_identity_token(self, client_id: str, audience: str) -> Token:
        return await self._ask(client_id, audience, identity_token=True)

    async def _ask(self, client_id: str, target: str, *, identity_token: bool) -> Token:
        cred, api = self.credential, self.api
        if cred is None or api is None:
            raise ServerUnavailable("the agent is not enrolled")
        try:
            call = api.identity_token if identity_token else api.token
            token = await call(cred.client_auth(client_id), cred.host.issuer, target)
        except ServerUnavailable:
            self.server_reachable = False
            raise
        except ServerRefused as exc:
            self.server_reachable = True
            if exc.error == "invalid_client" and client_id == cred.host.system_client_id:
                self._confirm_soon()  # removed? the host view says for sure (one refusal may be replica lag)
            raise
        self.server_reachable = True
        return token

    def _confirm_soon(self) -> None:
        if self._confirming is None or self._confirming.done():
            self._confirming = asyncio.get_running_loop().create_task(self.poll())

    def _revoke(self) -> None:
        if not self.revoked:
            log.warning("the server no longer accepts this host: serving nothing",
                        extra={"event": "host_revoked"})
        self.revoked = True
        self.cache.clear()
        self.identity_tokens.clear()

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Enroll or load the credential, fetch entitlements, start background work and listeners."""
        self.state.ensure()
        if self.state.enrolled:
            self.credential = credential.load(self.state, grace=self.settings.renewal_grace)
            host = self.credential.host
            self.api = ServerApi(host.server, host.tenant_id, ca_file=self.settings.ca_file, clock=self.clock)
        else:
            s = self.settings
            tenant = s.tenant or tenant_of_join_token(s.join_token)
            if not (s.join_token and s.server and tenant):
                raise ConfigurationError("not enrolled yet: give --server and --join-token")
            self.api = ServerApi(s.server, tenant, ca_file=s.ca_file, clock=self.clock)
            self.credential = await credential.enroll(self.api, self.state, s.join_token, grace=s.renewal_grace)
            log.info("enrolled", extra={"event": "host_enrolled", "host_id": self.credential.host.host_id})
        self.identity_header()  # written now, so the admin can hand it to App-Service-style workloads
        await self.poll()
        self._tasks = [asyncio.create_task(self._loop(self.settings.refresh_interval, self.tick)),
                       asyncio.create_task(self._loop(self.settings.poll_interval, self.poll))]
        await self._listen()

    async def _loop(self, interval: float, step: Any) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await step()
            except Exception:
                log.exception("background step failed", extra={"event": "agent_background_error"})

    async def tick(self) -> None:
        """Renew the certificate when due, then refresh due tokens."""
        await self.renew_if_due()
        if not self.revoked:
            await self.cache.refresh_due()
            await self.identity_tokens.refresh_due()

    async def renew_if_due(self, *, force: bool = False) -> bool:
        """Renew at half the certificate's lifetime, or now with `force` (SIGHUP)."""
        cred, api = self.credential, self.api
        if cred is None or api is None or self.revoked or (not force and self.clock.now() < cred.material.renew_at):
            return False
        try:
            await cred.renew(api, self.state)
        except ServerUnavailable:
            self.server_reachable = False
            return False
        except ServerRefused as exc:
            if exc.error == "invalid_client":
                await self.poll()  # the host view confirms a removal (and revokes)
            else:
                log.warning("certificate renewal refused", extra={"event": "host_renew_refused", "error": exc.error})
            return False
        self.server_reachable = True
        self.renewals += 1
        log.info("host certificate renewed", extra={"event": "host_renewed"})
        return True

    async def poll(self) -> None:
        """Fetch this host's identities and bindings (and learn whether it still exists)."""
        cred, api = self.credential, self.api
        if cred is None or api is None:
            return
        try:
            view = await api.host_view(cred.assertion(cred.host.system_client_id))
        except ServerUnavailable:
            self.server_reachable = False
            return
        except ServerRefused as exc:
            self.server_reachable = True
            if exc.error == "invalid_client":
                self._revoke()
            return
        self.server_reachable = True
        self.revoked = False
        self.entitlements = Entitlements.of(view)
        self.last_poll = self.clock.now()

    async def _listen(self) -> None:
        address = self.settings.listen_address()
        if address is not None:
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(address)
            tcp.listen(1024)
            tcp.setblocking(False)
            self.bound_port = tcp.getsockname()[1]
            port = str(self.bound_port).encode()
            self.allowed_hosts = self.allowed_hosts | {n + b":" + port for n in (b"127.0.0.1", b"localhost", b"[::1]")}
            self._sockets.append(tcp)
        if self.settings.socket is not None:
            self._sockets.append(unix_listener(self.settings.socket))
        if not self._sockets:
            raise ConfigurationError("give --listen or --socket: the agent needs somewhere to listen")
        config = uvicorn.Config(
            create_endpoints(self, self.clock.now), http=guarded(self.settings.limits, PeerProtocol), lifespan="off",
            access_log=False, server_header=False, date_header=False, log_level="warning",
            proxy_headers=False,  # proxied requests are refused (F02): no middleware reading them first
            **self.settings.limits.uvicorn_options(),
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.create_task(self._server.serve(sockets=self._sockets))
        while not self._server.started:
            if self._serving.done():
                self._serving.result()
                raise ConfigurationError("the agent's listeners stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._confirming] if self._confirming else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
        for sock in self._sockets:
            sock.close()
        if self.settings.socket is not None:
            with contextlib.suppress(FileNotFoundError):
                self.settings.socket.unlink()
        if self.api is not None:
            await self.api.close()


def tenant_of_join_token(token: str | None) -> str | None:
    """Join tokens read `kjt.TENANT.HOST.SECRET`: the tenant is the second field."""
    parts = (token or "").split(".")
    return parts[1] if len(parts) == 4 and parts[0] == "kjt" else None


def unix_listener(path: Path) -> socket.socket:
    """A Unix socket any local user may connect to (who gets what is decided per caller)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o666)  # noqa: S103 - access is decided per caller by its peer credentials
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def run(settings: AgentSettings) -> None:
    """Run until SIGINT or SIGTERM; SIGHUP renews the host certificate at once (after a suspected
    compromise of the key, or to test renewal)."""
    agent = Agent(settings)
    await agent.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    background: set[asyncio.Task[bool]] = set()

    def renew_now() -> None:
        task = loop.create_task(agent.renew_if_due(force=True))
        background.add(task)
        task.add_done_callback(background.discard)

    loop.add_signal_handler(signal.SIGHUP, renew_now)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("agent ready", extra={"event": "agent_ready", "port": agent.bound_port})
    try:
        await stop.wait()
    finally:
        await agent.stop()
