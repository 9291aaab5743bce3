"""Small helpers shared by the routes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from keyless.errors import KeylessError
from keyless.server.context import ServerContext


def ctx_of(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=media_type)


class BodyTooLarge(KeylessError):
    pass


async def read_capped(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it exceeds `limit` (never buffer a huge body, G03/B22)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
