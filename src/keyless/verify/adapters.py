"""Framework adapters: a pure-ASGI middleware, a FastAPI dependency and a WSGI decorator.

None of them imports a web framework at module level, so `keyless.verify` installs and imports
without FastAPI, Starlette or Flask. The FastAPI dependency imports FastAPI when it is built (an
optional integration, not a dependency of the validator; the import-linter contract names this one
exception).

Every refusal goes through `challenge` (RFC 6750 §3, catalog J20).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Literal

from keyless.errors import KeylessError
from keyless.jose.jws import MAX_TOKEN_LENGTH
from keyless.verify.claims import AccessToken, InvalidToken
from keyless.verify.errors import InsufficientScope, MalformedAuthorization, TokenTooLarge, challenge
from keyless.verify.validator import TokenValidator, authorize

Kind = Literal["app", "delegated"] | None
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
MAX_AUTHORIZATION = MAX_TOKEN_LENGTH + len("Bearer ") + 16


def bearer_token(values: list[str]) -> str | None:
    """The token of the one `Authorization: Bearer` header; None when no Bearer credentials were sent.

    Raises `MalformedAuthorization` for several Authorization headers or an oversized one (J09: refused before
    any parsing)."""
    if not values:
        return None
    if len(values) > 1:
        raise MalformedAuthorization("several Authorization headers")
    value = values[0]
    if len(value) > MAX_AUTHORIZATION:
        raise TokenTooLarge("Authorization header too large")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None  # another scheme: a bare challenge, no error code (RFC 6750 §3.1)
    token = token.strip(" ")
    if not token:
        raise MalformedAuthorization("Bearer without a token")
    return token


def _check(token: AccessToken, roles: tuple[str, ...], scopes: tuple[str, ...], kind: Kind) -> AccessToken:
    return authorize(token, roles=roles, scopes=scopes, kind=kind)


def require_roles(validator: TokenValidator, *roles: str, kind: Kind = None) -> Any:
    """A FastAPI dependency (`Depends`): a valid token holding at least one of `roles`.

    Use it in `dependencies=[...]`, or as a parameter default to receive the `AccessToken`."""
    return _dependency(validator, roles=roles, scopes=(), kind=kind)


def require_scopes(validator: TokenValidator, *scopes: str, kind: Kind = None) -> Any:
    """A FastAPI dependency: a valid token whose `scp` holds at least one of `scopes`."""
    return _dependency(validator, roles=(), scopes=scopes, kind=kind)


def _dependency(validator: TokenValidator, *, roles: tuple[str, ...], scopes: tuple[str, ...], kind: Kind) -> Any:
    import fastapi

    async def dependency(request: Any) -> AccessToken:
        try:
            token = bearer_token(request.headers.getlist("authorization"))
            if token is None:
                raise _NoCredentials
            access = _check(await validator.avalidate(token), roles, scopes, kind)
        except (_NoCredentials, InvalidToken, InsufficientScope) as exc:
            status, headers, body = challenge(None if isinstance(exc, _NoCredentials) else exc,
                                              realm=validator.realm)
            www = {k: v for k, v in headers if k == "www-authenticate"}
            raise fastapi.HTTPException(status_code=status, detail=_error_of(body), headers=www) from None
        request.state.access_token = access
        return access

    param = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=fastapi.Request)
    dependency.__signature__ = inspect.Signature([param], return_annotation=AccessToken)  # type: ignore[attr-defined]
    return fastapi.Depends(dependency)


class _NoCredentials(KeylessError):
    pass


def _error_of(body: bytes) -> str:
    return str(json.loads(body)["error"])


def _path_matches(path: str, prefixes: tuple[str, ...]) -> bool:
    """`/api` and `/api/` both guard `/api` and everything below it, never `/apix`."""
    return any(path == base or path.startswith(base + "/") for base in (p.rstrip("/") for p in prefixes))


class BearerAuthMiddleware:
    """Pure ASGI middleware: requests under `prefixes` need a valid bearer token (and, when given, one
    of `roles`/`scopes`); the `AccessToken` is put in `scope["state"]["access_token"]`
    (`request.state.access_token` in Starlette/FastAPI). Other paths pass through untouched."""

    def __init__(
        self,
        app: ASGIApp,
        validator: TokenValidator,
        *,
        prefixes: Iterable[str] = ("/",),
        roles: Iterable[str] = (),
        scopes: Iterable[str] = (),
        kind: Kind = None,
    ) -> None:
        self.app = app
        self.validator = validator
        self.prefixes = tuple(prefixes)
        self.roles = tuple(roles)
        self.scopes = tuple(scopes)
        self.kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not _path_matches(scope["path"], self.prefixes):
            await self.app(scope, receive, send)
            return
        values = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"authorization"]
        refusal: InvalidToken | InsufficientScope | None
        try:
            token = bearer_token(values)
            if token is not None:
                access = _check(await self.validator.avalidate(token), self.roles, self.scopes, self.kind)
                scope.setdefault("state", {})["access_token"] = access
                await self.app(scope, receive, send)
                return
            refusal = None
        except (InvalidToken, InsufficientScope) as exc:
            refusal = exc
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        status, headers, body = challenge(refusal, realm=self.validator.realm)
        raw = [(k.encode(), v.encode()) for k, v in headers] + [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_require_roles(
    validator: TokenValidator, *roles: str, scopes: Iterable[str] = (), kind: Kind = None
) -> Callable[[WSGIApp], WSGIApp]:
    """Decorate a WSGI application (or Flask's `app.wsgi_app`): requests need a valid bearer token
    holding one of `roles` (and of `scopes` when given); the `AccessToken` is put in
    `environ["keyless.access_token"]`."""
    wanted_scopes = tuple(scopes)

    def decorate(app: WSGIApp) -> WSGIApp:
        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            header = environ.get("HTTP_AUTHORIZATION")
            refusal: InvalidToken | InsufficientScope | None
            try:
                token = bearer_token([header] if isinstance(header, str) else [])
                if token is not None:
                    access = _check(validator.validate(token), roles, wanted_scopes, kind)
                    environ["keyless.access_token"] = access
                    return app(environ, start_response)
                refusal = None
            except (InvalidToken, InsufficientScope) as exc:
                refusal = exc
            status, headers, body = challenge(refusal, realm=validator.realm)
            start_response(f"{status} {_REASONS[status]}", [*headers, ("content-length", str(len(body)))])
            return [body]

        wrapped.__name__ = getattr(app, "__name__", "wsgi_app")
        wrapped.__doc__ = app.__doc__
        return wrapped

    return decorate
