"""Discovery metadata (both RFC 8414 and OIDC paths) and the JWKS."""

from __future__ import annotations

import hashlib

import orjson
from starlette.requests import Request
from starlette.responses import Response

from keyless.oauth.keyring import JWKS_MAX_AGE
from keyless.oauth.metadata import discovery_document
from keyless.server.routes.common import ctx_of, json_response

PUBLIC_HEADERS = {"Access-Control-Allow-Origin": "*"}


def _not_found() -> Response:
    return json_response({"error": "invalid_request", "error_description": "unknown tenant"}, 404)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: `*`, or any listed entity tag equal to ours by weak comparison."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


async def openid_configuration(request: Request) -> Response:
    ctx = ctx_of(request)
    tenant = await ctx.directory.get_tenant(request.path_params["tenant"])
    if tenant is None:
        return _not_found()
    headers = {"Cache-Control": "public, max-age=3600", **PUBLIC_HEADERS}
    return json_response(discovery_document(ctx.base_url, tenant), headers=headers)


async def jwks(request: Request) -> Response:
    ctx = ctx_of(request)
    tenant = await ctx.directory.get_tenant(request.path_params["tenant"])
    if tenant is None:
        return _not_found()
    body = orjson.dumps(await ctx.keyring.jwks(tenant.id))
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": f"public, max-age={JWKS_MAX_AGE}", "ETag": etag, **PUBLIC_HEADERS}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers, media_type="application/json")
