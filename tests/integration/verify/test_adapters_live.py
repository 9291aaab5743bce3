"""FastAPI dependency, ASGI middleware and WSGI decorator over real tokens from a real server, with
the exact RFC 6750 challenges (catalog J09, J20)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from keyless.verify import AccessToken, BearerAuthMiddleware, TokenValidator, require_roles, wsgi_require_roles
from tests.integration.verify.conftest import World


@pytest.fixture
def validator(world: World) -> Iterator[TokenValidator]:
    v = TokenValidator(issuer=world.server.issuer, audience=world.audience, algorithms=["RS256"],
                       ca=world.server.ca)
    yield v
    v.close()


def expectations(world: World) -> list[tuple[dict[str, str], int, str | None]]:
    realm = f'Bearer realm="{world.audience}"'
    return [
        ({"authorization": f"Bearer {world.reader}"}, 200, None),
        ({"authorization": f"bearer {world.reader}"}, 200, None),  # the scheme is case-insensitive
        ({}, 401, realm),
        ({"authorization": "Basic dXNlcjpwYXNz"}, 401, realm),
        ({"authorization": "Bearer not.a.token"}, 401, realm + ', error="invalid_token"'),
        ({"authorization": f"Bearer {world.reader[:-4]}AAAA"}, 401, realm + ', error="invalid_token"'),
        ({"authorization": "Bearer "}, 400, realm + ', error="invalid_request"'),
        ({"authorization": "Bearer " + "a" * 20_000}, 400, realm + ', error="invalid_request"'),
        ({"authorization": f"Bearer {world.writer}"}, 403,
         realm + ', error="insufficient_scope", scope="Orders.Read"'),
    ]


def check(resp: httpx.Response, status: int, www: str | None) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers.get("www-authenticate") == www
    if status != 200:
        assert "reason" not in resp.text and "signature" not in resp.text and "kid" not in resp.text


async def test_fastapi_require_roles(world: World, validator: TokenValidator) -> None:
    app = FastAPI()

    @app.get("/orders", dependencies=[require_roles(validator, "Orders.Read")])
    async def orders() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/me")
    async def me(token: AccessToken = require_roles(validator, "Orders.Read", "Orders.Write")) -> dict[str, Any]:
        return {"client_id": token.client_id, "roles": sorted(token.roles)}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        for headers, status, www in expectations(world):
            check(await client.get("/orders", headers=headers), status, www)
        resp = await client.get("/me", headers={"authorization": f"Bearer {world.writer}"})
        assert resp.status_code == 200 and resp.json()["roles"] == ["Orders.Write"]
        assert (await client.get("/me")).json() == {"detail": "unauthorized"}
        assert "/orders" in (await client.get("/openapi.json")).json()["paths"]


async def test_asgi_middleware(world: World, validator: TokenValidator) -> None:
    app = FastAPI()

    @app.get("/api/orders")
    async def orders(request: Request) -> dict[str, Any]:
        token: AccessToken = request.state.access_token
        return {"client_id": token.client_id}

    @app.get("/apix")
    async def apix() -> dict[str, str]:
        return {"open": "yes"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(BearerAuthMiddleware, validator=validator, prefixes=["/api"], roles=["Orders.Read"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        for headers, status, www in expectations(world):
            check(await client.get("/api/orders", headers=headers), status, www)
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/apix")).status_code == 200  # a prefix is a path segment, not a substring
        ok = await client.get("/api/orders", headers={"authorization": f"Bearer {world.reader}"})
        assert ok.json()["client_id"]


def test_wsgi_decorator(world: World, validator: TokenValidator) -> None:
    @wsgi_require_roles(validator, "Orders.Read")
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        token: AccessToken = environ["keyless.access_token"]
        start_response("200 OK", [("content-type", "text/plain")])
        return [token.client_id.encode()]

    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://api") as client:
        for headers, status, www in expectations(world):
            check(client.get("/orders", headers=headers), status, www)
        assert client.get("/", headers={"authorization": f"Bearer {world.reader}"}).text


def test_require_roles_returns_a_fastapi_depends(validator: TokenValidator) -> None:
    assert type(require_roles(validator, "Orders.Read")) is type(Depends(lambda: None))
