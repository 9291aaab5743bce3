"""What every management router shares: the path prefix, the server context of a request, and the
access declarations (`Reader`, `Admin`, `VaultData`, `PublicAccess` from `access.py`, docs/api.md).
Kept apart from the routers so that each router module imports this one and none imports another
(no import circle)."""

from __future__ import annotations

from fastapi import Request

from keyless.server.context import ServerContext
from keyless.server.manage.access import Admin, PublicAccess, Reader, VaultData

__all__ = ["PREFIX", "Admin", "PublicAccess", "Reader", "VaultData", "context_of"]

PREFIX = "/{tenant}/manage/v1"


def context_of(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx
