"""Who may call each management operation, declared once per operation (docs/api.md, "Access").

An operation declares its access by the one dependency it takes (`caller: Reader`, `caller: Admin`,
`caller: VaultData`, or `dependencies=[PublicAccess]`). That dependency is both the enforcement (it
authenticates the bearer token and checks the role) and the declaration: `check_declarations` refuses
to build an application with an operation that declares none or more than one, and `document_access`
writes the same declaration into the OpenAPI document (`security`, `x-keyless-role` and a sentence
in the description), so the document and the server cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import fastapi.routing
from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from keyless.directory.bootstrap import ADMIN_ROLE, READER_ROLE
from keyless.errors import KeylessError
from keyless.server.context import ServerContext
from keyless.server.manage.auth import Caller, authenticate

BEARER_SCHEME = "bearer"
ROLE_EXTENSION = "x-keyless-role"


class UndeclaredAccess(KeylessError):
    """An operation states no access requirement, or more than one: the application is not built."""


@dataclass(frozen=True)
class Requirement:
    """One access level: `role` is what `x-keyless-role` says; `roles` the management roles any of which
    admits the caller (empty: public, no token at all)."""

    role: str
    roles: frozenset[str]
    sentence: str

    @property
    def public(self) -> bool:
        return not self.roles


@dataclass(frozen=True)
class RequireRole:
    """The dependency that enforces a `Requirement` (FastAPI calls it; its identity is the declaration)."""

    requirement: Requirement

    async def __call__(self, request: Request, tenant: str) -> Caller:
        ctx: ServerContext = request.app.state.ctx
        return await authenticate(ctx, request, tenant, roles=self.requirement.roles)


@dataclass(frozen=True)
class RequireNothing:
    """The declaration of a public operation: no token is read."""

    requirement: Requirement

    async def __call__(self) -> None:
        return None


PUBLIC = Requirement("public", frozenset(), "Public: no token is needed.")
READER = Requirement(
    READER_ROLE, frozenset({READER_ROLE, ADMIN_ROLE}),
    f"Needs a management API token carrying {READER_ROLE} or {ADMIN_ROLE}.",
)
ADMIN = Requirement(ADMIN_ROLE, frozenset({ADMIN_ROLE}), f"Needs a management API token carrying {ADMIN_ROLE}.")
VAULT_DATA = Requirement(
    "vault-grant", frozenset({READER_ROLE, ADMIN_ROLE}),
    f"Needs a management API token carrying {READER_ROLE} or {ADMIN_ROLE}, and then the vault's own grant "
    f"for the caller (403 without one): a directory admin reads no secret it was not granted.",
)
REQUIREMENTS = (PUBLIC, READER, ADMIN, VAULT_DATA)

Reader = Annotated[Caller, Depends(RequireRole(READER))]
Admin = Annotated[Caller, Depends(RequireRole(ADMIN))]
VaultData = Annotated[Caller, Depends(RequireRole(VAULT_DATA))]
PublicAccess = Depends(RequireNothing(PUBLIC))


def _declared(dependant: Dependant) -> list[Requirement]:
    found: list[Requirement] = []
    for dep in dependant.dependencies:
        if isinstance(dep.call, RequireRole | RequireNothing):
            found.append(dep.call.requirement)
        found.extend(_declared(dep))
    return found


def _routes(app: FastAPI) -> list[tuple[str, BaseRoute]]:
    """(full path, route) of every route, through included routers (FastAPI ≥ 0.16x includes lazily)."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    if walk is None:  # pragma: no cover - older FastAPI: routes are copied flat at include time
        return [(getattr(r, "path_format", getattr(r, "path", "")), r) for r in app.routes]
    return [(rc.path_format or rc.path or "", rc.original_route) for rc in walk(app.routes)]


def declared_access(route: APIRoute, path: str | None = None) -> Requirement:
    """The route's one declaration; `UndeclaredAccess` when it has none or several."""
    found = set(_declared(route.dependant))
    label = f"{'/'.join(sorted(route.methods or ()))} {path or route.path}"
    if not found:
        raise UndeclaredAccess(f"{label} declares no access: take `caller: Reader`, `Admin`, `VaultData` "
                               f"or add `dependencies=[PublicAccess]`")
    if len(found) > 1:
        raise UndeclaredAccess(f"{label} declares more than one access level: {sorted(r.role for r in found)}")
    return found.pop()


def check_declarations(app: FastAPI) -> dict[tuple[str, str], Requirement]:
    """Every operation's declaration by (method, path); raises at build time if one is missing."""
    table: dict[tuple[str, str], Requirement] = {}
    for path, route in _routes(app):
        if isinstance(route, APIRoute):
            requirement = declared_access(route, path)
            for method in route.methods or ():
                table[(method.lower(), path)] = requirement
        elif path != app.openapi_url:
            # A bare Starlette route would bypass the declaration: only the document itself may be one.
            raise UndeclaredAccess(f"{path or route!r} is not an API route and declares no access")
    return table
