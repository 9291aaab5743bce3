"""`BearerAuthMiddleware` at the ASGI level: lifespan and unguarded paths pass through, a refused
websocket is closed (policy violation), the token lands in scope["state"]."""

from __future__ import annotations

from typing import Any

from keyless.crypto.keys import generate, public_of
from keyless.jose.jwk import key_id, public_jwk
from keyless.jose.jws import sign
from keyless.verify import BearerAuthMiddleware, TokenValidator
from tests.unit.verify.test_validator import AUD, ISS, NOW, Clock, claims


async def run(mw: BearerAuthMiddleware, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        sent.append(message)

    await mw(scope, receive, send)
    return sent


async def test_middleware_asgi_level() -> None:
    key = generate("ES256")
    kid = key_id(public_of(key))
    validator = TokenValidator.from_jwks({"keys": [public_jwk(public_of(key), "ES256")]}, issuer=ISS, audience=AUD,
                                         algorithms=["ES256"], clock=Clock())
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    mw = BearerAuthMiddleware(app, validator, prefixes=["/api/"])
    await run(mw, {"type": "lifespan"})
    await run(mw, {"type": "http", "path": "/public", "headers": []})
    assert len(seen) == 2
    closed = await run(mw, {"type": "websocket", "path": "/api/ws", "headers": []})
    assert closed == [{"type": "websocket.close", "code": 1008}] and len(seen) == 2
    token = sign(claims(), key, alg="ES256", kid=kid, typ="at+jwt")
    await run(mw, {"type": "http", "path": "/api", "headers": [(b"authorization", f"Bearer {token}".encode())]})
    assert seen[-1]["state"]["access_token"].claims["exp"] == int(NOW) + 600
    refused = await run(mw, {"type": "http", "path": "/api/x", "headers": [(b"authorization", b"Bearer x.y.z")]})
    assert refused[0]["status"] == 401 and len(seen) == 3
    assert dict(refused[0]["headers"])[b"www-authenticate"] == b'Bearer realm="api://orders", error="invalid_token"'
