"""`/{tenant}/oauth2/v2.0/token`: the HTTP shell around `keyless.oauth.service.TokenService`.

Under `keyless serve` a POST never reaches ASGI: the listener's protocol answers it
(`keyless.server.token_protocol`, issue 18) through `TokenHead` and `http_request` below. Where the app
runs under any other ASGI server, a POST is dispatched as a raw ASGI call (`TokenEndpoint`), ahead of
Starlette's routing and request/response objects: the path is matched once, the body read under the
cap straight from `receive`, and the answer written as two messages. Every other method goes through
the Starlette route (`token`), which hands it to the same service, so a GET still gets the service's
405. All three build the same `TokenHttpRequest` and answer with the same headers and body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from keyless.errors import KeylessError
from keyless.oauth.request import MAX_BODY, TokenHttpRequest
from keyless.oauth.service import NO_STORE, TokenResult
from keyless.server.client_address import client_address
from keyless.server.context import ServerContext
from keyless.server.metrics import TOKEN_REQUESTS
from keyless.server.routes.common import BodyTooLarge, ctx_of, json_response, read_capped

log = logging.getLogger("keyless.token")
PATHS = ("/oauth2/v2.0/token", "/oauth2/token")
TEMPLATES = {suffix: "/{tenant}" + suffix for suffix in PATHS}
_SUCCESS = TOKEN_REQUESTS.labels(result="success", error="")  # bound once; failures bind per error code
_SUCCESS_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in NO_STORE.items()]


def observe(result: TokenResult) -> None:
    if result.error is None:
        _SUCCESS.inc()
        return
    TOKEN_REQUESTS.labels(result="failure", error=result.error.error).inc()
    log.info("token request refused", extra={"event": "token_refused", "error": result.error.error,
                                              "detail": result.error.detail})


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
        source=client_address(request.client.host if request.client else None,
                              forwarded=headers.getlist("forwarded"),
                              x_forwarded_for=headers.getlist("x-forwarded-for"),
                              trusted_proxies=ctx.trusted_proxies),
        body_too_large=too_large,
        repeated_header=len(auth) > 1 or len(headers.getlist("content-type")) > 1,
    )
    result = await ctx.tokens.handle(request.path_params["tenant"], http)
    observe(result)
    return json_response(result.body, result.status, dict(result.headers))


def token_tenant(path: str) -> tuple[str, str] | None:
    """(tenant, route template) when `path` is exactly `/{tenant}/oauth2[/v2.0]/token` with one
    non-empty tenant segment, as Starlette's `[^/]+` would match it; else None."""
    for suffix in PATHS:
        if path.endswith(suffix):
            tenant = path[1 : -len(suffix)]
            if path.startswith("/") and tenant and "/" not in tenant:
                return tenant, TEMPLATES[suffix]
    return None


class _Route:
    """What `observe.route_template` reads from the scope (Starlette puts its Route there)."""

    def __init__(self, path: str) -> None:
        self.path = path


_ROUTES = {template: _Route(template) for template in TEMPLATES.values()}


class _ClientGone(KeylessError):
    """The client disconnected before its body was complete: nothing to answer, nothing to process."""


async def _read_body(too_large: bool, receive: Receive) -> bytes | None:
    """The body, or None once it passes `MAX_BODY` (declared or streamed; never buffered beyond).
    Raises `_ClientGone` when the client leaves mid-body: a truncated form is never processed."""
    if too_large:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class TokenHead:
    """What the token path reads of a POST's headers, collected in one pass over them (the listener's
    path and the ASGI one alike): the first Authorization and Content-Type and whether either was
    repeated (the service refuses a repeat), whether a Content-Length declares a body over `MAX_BODY`
    or is not a number (refused before any body is read), and the forwarding headers, which are read
    only when the peer is a trusted proxy (`server.client_address`). A pass per question was a
    third of the header work of a token POST."""

    __slots__ = ("authorization", "content_type", "forwarded", "repeated", "too_large", "x_forwarded_for")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        authorization = content_type = None
        repeated = too_large = False
        forwarded: list[str] = []
        x_forwarded_for: list[str] = []
        for name, value in headers:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
                else:
                    repeated = True
            elif name == b"content-type":
                if content_type is None:
                    content_type = value.decode("latin-1")
                else:
                    repeated = True
            elif name == b"content-length":
                if not value.isdigit() or int(value) > MAX_BODY:
                    too_large = True
            elif name == b"forwarded":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-forwarded-for":
                x_forwarded_for.append(value.decode("latin-1"))
        self.authorization = authorization
        self.content_type = content_type
        self.repeated = repeated
        self.too_large = too_large
        self.forwarded = forwarded
        self.x_forwarded_for = x_forwarded_for


def http_request(head: TokenHead, query: bytes, body: bytes | None, peer: str | None,
                 ctx: ServerContext) -> TokenHttpRequest:
    """The token service's view of a POST: the headers it reads (a repeat flagged, so it can refuse
    it), the body or None when it passed `MAX_BODY`, and the client's address (trusted proxies
    applied). Shared by the ASGI handler and the listener's own token path
    (`keyless.server.token_protocol`)."""
    trusted = ctx.trusted_proxies
    return TokenHttpRequest(
        method="POST",
        content_type=head.content_type,
        authorization=head.authorization,
        query=query,
        body=body or b"",
        source=client_address(peer, forwarded=head.forwarded, x_forwarded_for=head.x_forwarded_for,
                              trusted_proxies=trusted) if trusted else peer,
        body_too_large=body is None,
        repeated_header=head.repeated,
    )


def header_pairs(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """A result's headers as the wire has them (`NO_STORE`'s encoded once, shared)."""
    return _SUCCESS_HEADERS if headers is NO_STORE else [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def response_headers(result: TokenResult, payload: bytes) -> list[tuple[bytes, bytes]]:
    """The answer's headers, in the order the ASGI handler has always sent them."""
    return [*header_pairs(result.headers), (b"content-length", str(len(payload)).encode("ascii")),
            (b"content-type", b"application/json")]


async def answer(ctx: ServerContext, tenant: str, http: TokenHttpRequest) -> tuple[TokenResult, bytes]:
    """The service's answer to one token POST, counted in the metrics, and its JSON body: what both
    the ASGI handler and the listener's own path send (each writes the headers its own way)."""
    result = await ctx.tokens.handle(tenant, http)
    observe(result)
    return result, orjson.dumps(result.body)


class TokenEndpoint:
    """The token endpoint's POST as a raw ASGI app (see the module docstring)."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send, tenant: str, template: str) -> None:
        scope["route"] = _ROUTES[template]
        head = TokenHead(scope["headers"])
        try:
            body = await _read_body(head.too_large, receive)
        except _ClientGone:
            return
        client = scope.get("client")
        http = http_request(head, scope.get("query_string", b""), body, client[0] if client else None, self.ctx)
        result, payload = await answer(self.ctx, tenant, http)
        await send({"type": "http.response.start", "status": result.status,
                    "headers": response_headers(result, payload)})
        await send({"type": "http.response.body", "body": payload})


async def authorize(request: Request) -> Response:
    """Present because MSAL requires the metadata field; Keyless serves only applications."""
    return json_response(
        {"error": "unsupported_response_type",
         "error_description": "Keyless issues tokens to applications only: use the token endpoint"},
        400,
    )
