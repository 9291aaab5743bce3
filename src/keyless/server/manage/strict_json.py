"""The one place the management API decodes JSON bodies: strictly (issue 11 item 8, docs/security.md
"Bad Unicode is a 400").

FastAPI decodes with `json.loads`, which accepts a lone surrogate, escaped (`"\\ud800"`) or as the raw
bytes ED A0 80, and hands the handler a `str` that cannot be encoded again: the first `.encode()`
(sealing a vault value, hashing, writing to PostgreSQL) raised and the caller got 500. RFC 8259 §8.1
requires UTF-8 and §8.2 leaves unpaired surrogates' behaviour unpredictable; we refuse them. orjson
does (and refuses NaN, Infinity and numbers past a double), and its `JSONDecodeError` is
`json.JSONDecodeError`, so FastAPI answers with its validation error: 400 `validation_failed`.
The vault port and the agent routes decode with orjson already.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Every router of the management API uses this route class (a test checks that none forgets)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
