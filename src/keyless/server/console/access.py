"""Who may use each console route, declared once per route the way management operations are
(`keyless.server.manage.access`, issue 20), and the checks every request passes (catalog O11, O13).

A route is a `ConsoleRoute(path, endpoint, requirement, methods)`; `guarded` wraps its endpoint so
that the declaration is also the enforcement: no live session → sign in first (a GET is redirected
to the sign-in page, anything else gets 401; so does a session whose credential has since been
disabled, revoked or lost its management role); a session without one of the requirement's roles → 403;
and any state-changing method must come from our own origin (`Origin`, when the browser sends it,
must name this host) and carry the session's CSRF token. `check_declarations` refuses a
console whose route declares nothing, and the authz tests walk the same table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from keyless.directory.bootstrap import MANAGEMENT_URI
from keyless.domain.console import ConsoleSession
from keyless.domain.model import Actor, ClientRecord, Tenant
from keyless.errors import KeylessError
from keyless.server.console.sessions import COOKIE, Sessions, csrf_ok, csrf_token
from keyless.server.context import ServerContext
from keyless.server.manage.access import ADMIN, READER, VAULT_DATA, Requirement

__all__ = ["ADMIN", "READER", "SAFE_METHODS", "SESSION", "VAULT_DATA", "Console", "ConsoleRoute", "Refused",
           "check_declarations", "guarded", "same_origin", "signed_in_with_live"]

SAFE_METHODS = frozenset({"GET", "HEAD"})
# Any live session, whatever its role: only signing out, which every session may do to itself.
SESSION = Requirement("session", READER.roles, "Any console session (to end itself).")


class Refused(KeylessError):
    """A console request refused before its endpoint ran: rendered as a page with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Console:
    """One authorised console request: the session, its tenant, its CSRF token, the parsed form."""

    request: Request
    ctx: ServerContext
    session: ConsoleSession
    tenant: Tenant
    csrf: str
    form: FormData | None = None

    @property
    def actor(self) -> Actor:
        """Audit records of console actions name the session's credential (issue 15): the client id
        and the id and kind of the credential the CLI signed in with (issue 20 item 3)."""
        return self.session.actor

    @property
    def is_admin(self) -> bool:
        return bool(self.session.roles & ADMIN.roles)

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    def require_confirmation(self) -> None:
        """Destructive actions need their confirmation box ticked (issue 15: "each with a confirmation")."""
        if self.field("confirm") != "yes":
            raise Refused(400, "Nothing was changed: tick the confirmation box to do this.")

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default).strip()[:512]


Endpoint = Callable[[Console], Awaitable[Response]]


@dataclass(frozen=True)
class ConsoleRoute:
    path: str
    endpoint: Endpoint
    requirement: Requirement
    methods: Sequence[str] = field(default=("GET",))

    @property
    def writes(self) -> bool:
        return any(m not in SAFE_METHODS for m in self.methods)


def check_declarations(routes: Sequence[ConsoleRoute]) -> None:
    """Refuse to build a console with a route that declares no role, or a write open to Readers."""
    for route in routes:
        if not route.requirement.roles:
            raise ValueError(f"console route {route.path} must need a session (Reader or Admin)")
        if route.requirement is SESSION and route.path != "/logout":
            raise ValueError(f"console route {route.path}: only signing out is open to any session")
        if route.writes and route.requirement is READER:
            raise ValueError(f"console route {route.path} changes state: it needs Admin (or the vault's grant)")


def same_origin(request: Request) -> bool:
    """A browser names the page that sent a POST in `Origin`; it must be this host (OWASP CSRF:
    verifying origin with standard headers). Absent, the CSRF token alone decides."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme == "https" and parts.netloc == request.headers.get("host", "")


def signed_in_with_live(client: ClientRecord, credential_id: str | None, credential_type: str | None,
                        now: float) -> bool:
    """The secret or certificate a session (or its login code) signed in with is still one the application may sign in
    with (not revoked, not expired): revoking a leaked credential also ends the console sessions it
    opened. A session whose token named no credential, or a federated one (no stored key to revoke;
    its trust is removed by the app and role checks), has nothing more to check."""
    if credential_type == "secret":
        return any(s.id == credential_id and s.usable_at(now) for s in client.secrets)
    if credential_type == "certificate":
        return any(c.id == credential_id and now < c.not_after for c in client.certificates)
    return True


async def current_roles(ctx: ServerContext, session: ConsoleSession) -> frozenset[str]:
    """The session's roles that its credential still holds now: a session never outlives the
    credential's access (disabled, deleted, its management role removed, or the secret or
    certificate it signed in with revoked or expired), on any replica."""
    client = await ctx.directory.get_client(session.tenant_id, session.client_id)
    management = await ctx.directory.find_resource(session.tenant_id, MANAGEMENT_URI)
    if client is None or not client.app.enabled or management is None \
            or not signed_in_with_live(client, session.credential_id, session.credential_type, ctx.clock.now()):
        return frozenset()
    held = await ctx.directory.assigned_roles(session.tenant_id, session.object_id, management.client_id)
    return session.roles & frozenset(held or ())


def guarded(route: ConsoleRoute, sessions: Callable[[Request], Sessions]) -> Callable[[Request], Awaitable[Any]]:
    async def endpoint(request: Request) -> Response:
        ctx: ServerContext = request.app.state.ctx
        cookie = request.cookies.get(COOKIE)
        session = await sessions(request).current(cookie)
        if session is None or cookie is None:
            if request.method in SAFE_METHODS:
                return RedirectResponse("/console/login", status_code=303)
            raise Refused(401, "Sign in first: this console session is missing, expired or ended.")
        tenant = await ctx.directory.get_tenant(session.tenant_id)
        roles = await current_roles(ctx, session) if tenant is not None else frozenset()
        if tenant is None or not roles:
            if request.method in SAFE_METHODS:
                return RedirectResponse("/console/login", status_code=303)
            raise Refused(401, "Sign in first: this console session's credential lost its access.")
        session = replace(session, roles=roles)
        form = None
        if request.method not in SAFE_METHODS:
            if not same_origin(request):
                raise Refused(403, "Refused: the request did not come from this console.")
            form = await request.form()
            sent = form.get("csrf")
            if not csrf_ok(cookie, sent if isinstance(sent, str) else None):
                raise Refused(403, "Refused: the form's CSRF token is missing or wrong. Reload the page and try again.")
        if not session.roles & route.requirement.roles:
            raise Refused(403, "Refused: this session's role may not do that (a Reader session only reads).")
        return await route.endpoint(Console(request, ctx, session, tenant, csrf_token(cookie), form))

    endpoint.__name__ = getattr(route.endpoint, "__name__", "console")
    return endpoint
