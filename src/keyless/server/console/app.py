"""`create_console_app(ctx)`: the web console, mounted at `/console` on the server's HTTPS port
(docs/console.md). Server-rendered pages over the same directory and vault services the
management API calls (`ctx.admin`, `ctx.vaults`, `ctx.hosts`, `ctx.federation`): no second code
path and no second set of rules. Every route's access is declared in `pages.ROUTES`
(`keyless.server.console.access`)."""

from __future__ import annotations

from http import HTTPStatus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from keyless.directory.errors import DirectoryError
from keyless.server.console import login
from keyless.server.console.access import Refused, check_declarations, guarded
from keyless.server.console.pages import ROUTES
from keyless.server.console.render import SecurityHeaders, page
from keyless.server.console.sessions import Sessions
from keyless.server.context import ServerContext
from keyless.server.limits import BodyLimit
from keyless.store.console import SqlConsoleStore
from keyless.vault.errors import VaultError

MAX_BODY = 256 * 1024  # a policy document (64 KiB) or a certificate (64 KiB) with room to spare


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def _error(status: int, message: str) -> Response:
    return page(None, "error.html", status=status, title=HTTPStatus(status).phrase, message=message)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return _error(exc.status, exc.message)


async def _directory_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DirectoryError)
    return _error(exc.status, exc.message)


async def _vault_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VaultError)
    return _error(exc.status, exc.message)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    return _error(status if status in (404, 405) else 400, "There is no such page in the console.")


async def _root(request: Request) -> Response:
    return RedirectResponse("/console/", status_code=308)


def create_console_app(ctx: ServerContext) -> SecurityHeaders:
    """The console's routes behind its security headers; request bodies (forms, a certificate
    upload) are capped at `MAX_BODY` before any is buffered."""
    check_declarations(ROUTES)
    routes: list[BaseRoute] = [
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Mount("/static", app=StaticFiles(packages=[("keyless.server.console", "static")]), name="static"),
    ]
    routes += [Route(r.path, guarded(r, _sessions), methods=list(r.methods)) for r in ROUTES]
    app = Starlette(routes=routes, exception_handlers={
        Refused: _refused, DirectoryError: _directory_error, VaultError: _vault_error, 404: _not_found,
        405: _not_found,
    })
    app.state.ctx = ctx
    app.state.sessions = Sessions(SqlConsoleStore(ctx.engine), ctx.clock)
    return SecurityHeaders(BodyLimit(app, MAX_BODY))


def console_routes(ctx: ServerContext) -> list[BaseRoute]:
    """What `create_app` mounts: `/console` (redirected to `/console/`) and the console itself."""
    return [Route("/console", _root, methods=["GET", "HEAD"]), Mount("/console", app=create_console_app(ctx))]
