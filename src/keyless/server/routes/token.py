"""`/{tenant}/oauth2/v2.0/token`: the HTTP shell around `keyless.oauth.service.TokenService`."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from keyless.oauth.request import MAX_BODY, TokenHttpRequest
from keyless.server.metrics import TOKEN_REQUESTS
from keyless.server.routes.common import BodyTooLarge, ctx_of, json_response, read_capped

log = logging.getLogger("keyless.token")


async def token(request: Request) -> Response:
    ctx = ctx_of(request)
    too_large = False
    try:
        body = await read_capped(request, MAX_BODY) if request.method == "POST" else b""
    except BodyTooLarge:
        body, too_large = b"", True
    headers = request.headers
    auth = headers.getlist("authorization")
    # Refusals of what the shell would not read are the token service's to answer and log.
    http = TokenHttpRequest(
        method=request.method,
        content_type=headers.get("content-type"),
        authorization=auth[0] if auth else None,
        query=request.scope.get("query_string", b""),
        body=body,
        source=request.client.host if request.client else None,
        body_too_large=too_large,
        repeated_header=len(auth) > 1 or len(headers.getlist("content-type")) > 1,
    )
    result = await ctx.tokens.handle(request.path_params["tenant"], http)
    if result.error is not None:
        TOKEN_REQUESTS.labels(result="failure", error=result.error.error).inc()
        log.info("token request refused", extra={"event": "token_refused", "error": result.error.error,
                                                  "detail": result.error.detail})
    else:
        TOKEN_REQUESTS.labels(result="success", error="").inc()
    return json_response(result.body, result.status, result.headers)


async def authorize(request: Request) -> Response:
    """Present because MSAL requires the metadata field; Keyless serves only applications."""
    return json_response(
        {"error": "unsupported_response_type",
         "error_description": "Keyless issues tokens to applications only: use the token endpoint"},
        400,
    )
