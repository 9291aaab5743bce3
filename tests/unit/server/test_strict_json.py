"""Every management route decodes JSON through `StrictJsonRoute` (docs/security.md "Bad Unicode is a
400"): a router added without it would bring back `json.loads` and its lone surrogates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from keyless.server.manage.api import create_management_app
from keyless.server.manage.strict_json import StrictJsonRequest, StrictJsonRoute


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)  # an included router (FastAPI includes lazily)
        if inner is not None:
            yield from _api_routes(inner.routes)


def test_every_management_route_decodes_json_strictly() -> None:
    routes = list(_api_routes(create_management_app().routes))
    assert len(routes) > 20
    assert [r.path for r in routes if not isinstance(r, StrictJsonRoute)] == []


@pytest.mark.parametrize("body", [b'"\\ud800"', b'"\xed\xa0\x80"', b'"\xff"', b"NaN", b"1e400"])
def test_a_lone_surrogate_or_non_utf8_body_is_a_json_decode_error(body: bytes) -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    request = StrictJsonRequest({"type": "http", "method": "PUT", "headers": []}, receive)
    with pytest.raises(json.JSONDecodeError):  # what FastAPI turns into its 400 validation error
        asyncio.run(request.json())
