"""`httpx.Auth` adapters: a bearer token from a Keyless credential on every request."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any, Protocol

import httpx


class _SyncTokens(Protocol):
    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


class _AsyncTokens(Protocol):
    async def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


class HttpxAuth(httpx.Auth):
    """For `httpx.Client`, from a synchronous credential."""

    def __init__(self, credential: _SyncTokens, scopes: Sequence[str]) -> None:
        self._credential = credential
        self._scopes = tuple(scopes)

    def __repr__(self) -> str:
        return f"HttpxAuth({self._credential!r}, scopes={self._scopes!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._credential.get_token(*self._scopes).token}"
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        raise RuntimeError("this credential is synchronous: use keyless.client.aio's credentials with "
                           "httpx.AsyncClient")
        yield request  # pragma: no cover  (makes this an async generator)


class AsyncHttpxAuth(httpx.Auth):
    """For `httpx.AsyncClient`, from an asynchronous credential (`keyless.client.aio`)."""

    def __init__(self, credential: _AsyncTokens, scopes: Sequence[str]) -> None:
        self._credential = credential
        self._scopes = tuple(scopes)

    def __repr__(self) -> str:
        return f"AsyncHttpxAuth({self._credential!r}, scopes={self._scopes!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("this credential is asynchronous: use keyless.client's credentials with httpx.Client")
        yield request  # pragma: no cover

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._credential.get_token(*self._scopes)
        request.headers["Authorization"] = f"Bearer {token.token}"
        yield request
