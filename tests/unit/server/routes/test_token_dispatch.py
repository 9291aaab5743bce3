"""The raw ASGI dispatch of token POSTs (issue 18) takes exactly the paths Starlette's token routes
matched, so moving the hot path out of the framework changed no URL's meaning; and a client that
leaves mid-body gets nothing processed."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import compile_path

from keyless.server.routes.token import TEMPLATES, TokenEndpoint, token_tenant

PATHS = [
    "/contoso/oauth2/v2.0/token", "/0f1e2d3c-0000-4000-8000-000000000001/oauth2/token", "/a/oauth2/v2.0/token",
    "//oauth2/v2.0/token", "/oauth2/v2.0/token", "/a/b/oauth2/v2.0/token", "/a/oauth2/v2.0/token/",
    "/a/oauth2/v2x0/token", "a/oauth2/v2.0/token", "/a/oauth2/v2.0/tokens", "/a/oauth2/v3.0/token",
    "/caf\u00e9/oauth2/token", "/a b/oauth2/token", "/a/oauth2/v2.0/token/oauth2/token",
]


@pytest.mark.parametrize("path", PATHS)
def test_dispatch_matches_what_starlette_matched(path: str) -> None:
    starlette = None
    for template in TEMPLATES.values():
        regex, _, _ = compile_path(template)
        found = regex.match(path)
        if found:
            starlette = (found["tenant"], template)
    assert token_tenant(path) == starlette


async def test_a_client_leaving_mid_body_is_not_served() -> None:
    """The form is never read from half a body (it could be a different, valid-looking request)."""
    messages = [{"type": "http.request", "body": b"grant_type=client_credentials&client_", "more_body": True},
                {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    class NoService:
        @property
        def tokens(self) -> Any:
            raise AssertionError("the token service must not see a truncated request")

    scope = {"type": "http", "method": "POST", "path": "/t/oauth2/v2.0/token", "headers": [], "client": None}
    await TokenEndpoint(NoService())(scope, receive, send, "t", TEMPLATES["/oauth2/v2.0/token"])  # type: ignore[arg-type]
    assert sent == []
