"""`create_app(ctx)`: the ASGI application.

The hot routes (token, discovery, JWKS, health) are plain Starlette routes; the management API is a
FastAPI application mounted behind them, so the token endpoint pays nothing for OpenAPI machinery.
A token POST does not even go through Starlette: `dispatch` hands it to the raw ASGI handler in
`routes/token.py`, inside the same error shield and request timing as every other request. Under
`keyless serve` it does not reach ASGI at all: the listener answers it (`keyless.server.token_protocol`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyless.server.console.app import console_routes
from keyless.server.context import ServerContext
from keyless.server.limits import BodyLimit
from keyless.server.manage.api import create_management_app
from keyless.server.manage.problems import problem
from keyless.server.observe import Observed, RouteObserver
from keyless.server.routes import agent, discovery, health, leak_report, token
from keyless.server.routes.common import json_response
from keyless.server.schedules import failure_sweep_loop, key_rotation_loop, notice_scan_loop
from keyless.server.vault.app import VaultApi
from keyless.server.vault.resource import ensure_all

log = logging.getLogger("keyless.server")
PURGE_INTERVAL = 600.0
MANAGEMENT_MAX_BODY = 5 * 1024 * 1024  # a vault restore blob (4 MiB) plus its JSON


class ErrorShield:
    """Answer any unexpected exception with a generic JSON 500 and a correlation id (catalog M04);
    the traceback goes to the log, never to the client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            correlation = uuid.uuid4().hex
            log.exception("unhandled error", extra={"event": "server_error", "correlation_id": correlation})
            if started:
                raise
            response = json_response(
                {"error": "server_error", "error_description": "internal error", "correlation_id": correlation},
                500,
            )
            await response(scope, receive, send)


def create_app(ctx: ServerContext, *, observer: RouteObserver | None = None,
               vault: tuple[VaultApi, RouteObserver] | None = None) -> ASGIApp:
    """The server's ASGI app; `observer` times the main surface's requests, `vault` is the vault API
    and its surface's observer (`keyless serve` shares both with the listener, which answers token
    POSTs and vault reads itself: `keyless.server.token_protocol`)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx.signins.start()
        ctx.audits.start()
        if ctx.events is not None:
            ctx.events.start()
        if ctx.contacts is not None:
            ctx.contacts.start()
        if ctx.changes is not None:
            await ctx.changes.start()
        sweeper = None
        if ctx.settings.vault_enabled:
            await ensure_all(ctx)
            sweeper = asyncio.create_task(purge_sweeper(ctx), name="vault-purge")
        rotation = failures = outbox = None
        if ctx.outbox_worker is not None and ctx.settings.outbox_worker:
            outbox = asyncio.create_task(ctx.outbox_worker.run(), name="outbox")
        notices = asyncio.create_task(notice_scan_loop(ctx), name="notice-scan")
        if ctx.settings.key_rotation_interval > 0:
            rotation = asyncio.create_task(key_rotation_loop(ctx), name="key-rotation")
        if ctx.engine.dialect.name == "postgresql":
            failures = asyncio.create_task(failure_sweep_loop(ctx), name="failure-sweep")
        ctx.ready = True
        try:
            yield
        finally:
            ctx.ready = False
            for task in (sweeper, rotation, failures, outbox, notices):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            # Flush the sign-in log and close the pool here, inside the orderly shutdown: uvicorn
            # re-raises SIGINT afterwards, which would cancel a later cleanup half-way.
            await ctx.close()

    management = create_management_app()
    management.state.ctx = ctx
    token_methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # all but POST: 405
    routes = [
        Route("/{tenant}/oauth2/v2.0/token", token.token, methods=token_methods),
        Route("/{tenant}/oauth2/token", token.token, methods=token_methods),
        Route("/{tenant}/oauth2/v2.0/authorize", token.authorize, methods=["GET", "POST"]),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery.openid_configuration),
        Route("/{tenant}/.well-known/openid-configuration", discovery.openid_configuration),
        Route("/.well-known/oauth-authorization-server/{tenant}/v2.0", discovery.openid_configuration),
        Route("/.well-known/openid-configuration/{tenant}/v2.0", discovery.openid_configuration),
        Route("/{tenant}/discovery/v2.0/keys", discovery.jwks),
        Route("/{tenant}/discovery/keys", discovery.jwks),
        Route("/{tenant}/agent/v1/enroll", agent.enroll, methods=["POST"]),
        Route("/{tenant}/agent/v1/renew", agent.renew, methods=["POST"]),
        Route("/{tenant}/agent/v1/host", agent.host_view, methods=["POST"]),
        Route("/leaks/github", leak_report.endpoint(ctx.settings.leak_report_keys), methods=["POST"]),
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", health.metrics),
        *console_routes(ctx),
        Mount("", app=BodyLimit(management, MANAGEMENT_MAX_BODY)),
    ]
    # Unmatched paths fall through to the management app, which answers with problem details; a path
    # that not even the mount matches (a decoded CR or LF in it) gets the same problem, not plain text.
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: _not_found})
    app.state.ctx = ctx
    endpoint = token.TokenEndpoint(ctx)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        """A token POST goes straight to its raw ASGI handler (issue 18); everything else to Starlette."""
        if scope["type"] == "http" and scope["method"] == "POST":
            match = token.token_tenant(scope["path"])
            if match is not None:
                await endpoint(scope, receive, send, *match)
                return
        await app(scope, receive, send)

    access_log = ctx.settings.access_log
    main = Observed(ErrorShield(dispatch), "main", access_log=access_log, observer=observer)
    if not ctx.settings.vault_enabled:
        return main
    api, vault_observer = vault or (VaultApi(ctx), RouteObserver("vault", access_log=access_log))
    vault_app = Observed(ErrorShield(api), "vault", access_log=access_log, observer=vault_observer)
    vault_port = ctx.settings.vault_port

    async def by_port(scope: Scope, receive: Receive, send: Send) -> None:
        """The vault is served at the root of its own port (compat §5.1: no path prefix)."""
        server = scope.get("server")
        if scope["type"] == "http" and server is not None and server[1] == vault_port:
            await vault_app(scope, receive, send)
        else:
            await main(scope, receive, send)

    return by_port


async def _not_found(request: Request, exc: Exception) -> Response:
    return problem(404, "not_found", "Not Found", "no such resource")


async def purge_sweeper(ctx: ServerContext, every: float = PURGE_INTERVAL) -> None:
    """Remove soft-deleted secrets whose retention has ended (reads already treat them as gone)."""
    while True:
        try:
            purged = await ctx.vaults.purge_expired()
            if purged:
                log.info("purged expired deleted secrets", extra={"event": "vault_purged", "count": purged})
        except Exception:
            log.exception("purge sweep failed", extra={"event": "vault_purge_failed"})
        await asyncio.sleep(every)
