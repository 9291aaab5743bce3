"""What every management router shares: the path prefix, the server context of a request, and the
caller dependencies (Keyless.Reader or Keyless.Admin, docs/management-api.md). Kept apart from the
routers so that each router module imports this one and none imports another (no import circle)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from keyless.server.context import ServerContext
from keyless.server.manage.auth import Caller, authenticate

PREFIX = "/{tenant}/manage/v1"


def context_of(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


async def reader(request: Request, tenant: str) -> Caller:
    return await authenticate(context_of(request), request, tenant, write=False)


async def admin(request: Request, tenant: str) -> Caller:
    return await authenticate(context_of(request), request, tenant, write=True)


Reader = Annotated[Caller, Depends(reader)]
Admin = Annotated[Caller, Depends(admin)]
