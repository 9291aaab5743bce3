"""Asynchronous credentials (`httpx.AsyncClient`): the same API as `keyless.client`, with `await`.

They satisfy azure-core's `AsyncTokenCredential` and `AsyncSupportsTokenInfo` protocols. Concurrent
`get_token` calls for the same scopes share one token request (an `asyncio.Lock` per scope set).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from keyless.client._base import (
    MANAGED_TIMEOUT,
    CredentialBase,
    ManagedIdentityBase,
    PathLike,
    TokenCache,
    certificate_auth,
    federated_auth,
    secret_auth,
    tls_context,
    workload_settings,
)
from keyless.client.adapters import AsyncHttpxAuth
from keyless.client.auth import ClientAuth
from keyless.client.core import Action, HttpRequest, HttpResponse, Outcome, RetryPolicy, Sleep, Token, TransportFailure
from keyless.client.errors import ClientAuthenticationError
from keyless.client.tokens import AccessToken, AccessTokenInfo, TokenRequestOptions

T = TypeVar("T")

__all__ = ["AsyncHttpxAuth", "CertificateCredential", "ClientSecretCredential", "ManagedIdentityCredential",
           "WorkloadIdentityCredential"]


async def drive(flow: Generator[Action, Outcome, T],
                send: Callable[[HttpRequest], Awaitable[HttpResponse | TransportFailure]],
                sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> T:
    """Run a sans-IO flow (`keyless.client.core`) with `send` and `sleep`: the one asynchronous driver,
    shared by these credentials and the host agent's token requests."""
    try:
        action = next(flow)
        while True:
            outcome: Outcome = None
            if isinstance(action, Sleep):
                await sleep(action.seconds)
            else:
                outcome = await send(action.request)
            action = flow.send(outcome)
    except StopIteration as stop:
        result: T = stop.value
        return result


class _AsyncBase(TokenCache):
    """The asynchronous half every credential shares (see `keyless.client.credentials._SyncBase`)."""

    def _init_io(self, http_client: httpx.AsyncClient | None, make: Callable[[], httpx.AsyncClient]) -> None:
        self._owns_http = http_client is None
        self._http = http_client or make()
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}

    async def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                        enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        return self._access_token(await self._get(self._key(scopes, tenant_id), claims is not None))

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        force, tenant_id = self._token_options(options)
        return self._access_token_info(await self._get(self._key(scopes, tenant_id), force))

    def auth(self, *scopes: str) -> AsyncHttpxAuth:
        """An `httpx.Auth` for `httpx.AsyncClient` that sends `Authorization: Bearer …` for `scopes`."""
        return AsyncHttpxAuth(self, scopes)

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _get(self, key: tuple[str, ...], force: bool = False) -> Token:
        seen = self._cache.get(key)
        if seen is not None and seen.fresh(self._clock()) and not force:
            return seen
        lock = self._locks.setdefault(key, asyncio.Lock())
        if seen is not None and seen.usable(self._clock()) and not force and lock.locked():
            return seen  # a refresh is in flight; the current token is still good
        async with lock:
            served = self._served(key, seen, force)
            if served is not None:
                return served
            cached = self._cache.get(key)
            try:
                token = await self._drive(self._flow(key))
            except ClientAuthenticationError as exc:
                return self._after_failure(key, cached, force, exc)
            self._cache[key] = token
            return token

    def _client_for(self, request: HttpRequest) -> httpx.AsyncClient:
        return self._http

    async def _drive(self, flow: Generator[Action, Outcome, T]) -> T:
        return await drive(flow, self._send, self._sleep)

    async def _send(self, request: HttpRequest) -> HttpResponse | TransportFailure:
        try:
            resp = await self._client_for(request).request(request.method, request.url, headers=request.headers,
                                                           data=request.form)
        except httpx.TransportError as exc:
            return TransportFailure(type(exc).__name__)
        return HttpResponse.of(resp.status_code, resp.headers, resp.content)


class _AsyncCredential(CredentialBase, _AsyncBase):
    def __init__(self, tenant_id: str, auth: ClientAuth, *, authority: str, ca: PathLike | None,
                 http_client: httpx.AsyncClient | None, retry_policy: RetryPolicy | None) -> None:
        CredentialBase.__init__(self, tenant_id, auth, authority=authority, retry_policy=retry_policy)
        self._init_io(http_client, lambda: httpx.AsyncClient(verify=tls_context(ca), timeout=10,
                                                             follow_redirects=False))


class ClientSecretCredential(_AsyncCredential):
    """An application's client secret (`client_secret_post`), asynchronously."""

    def __init__(self, tenant_id: str, client_id: str, client_secret: str, *, authority: str,
                 ca: PathLike | None = None, http_client: httpx.AsyncClient | None = None,
                 retry_policy: RetryPolicy | None = None) -> None:
        super().__init__(tenant_id, secret_auth(client_id, client_secret), authority=authority, ca=ca,
                         http_client=http_client, retry_policy=retry_policy)


class CertificateCredential(_AsyncCredential):
    """A certificate credential (see `keyless.client.CertificateCredential`), asynchronously."""

    def __init__(self, tenant_id: str, client_id: str, *, certificate_path: PathLike,
                 private_key_path: PathLike | None = None, password: str | bytes | None = None, authority: str,
                 ca: PathLike | None = None, send_certificate_chain: bool = False,
                 http_client: httpx.AsyncClient | None = None, retry_policy: RetryPolicy | None = None) -> None:
        auth = certificate_auth(client_id, certificate_path, private_key_path, password, send_certificate_chain)
        super().__init__(tenant_id, auth, authority=authority, ca=ca, http_client=http_client,
                         retry_policy=retry_policy)


class WorkloadIdentityCredential(_AsyncCredential):
    """Workload identity federation (see `keyless.client.WorkloadIdentityCredential`), asynchronously."""

    def __init__(self, *, tenant_id: str | None = None, client_id: str | None = None,
                 token_file_path: PathLike | None = None, authority: str | None = None, ca: PathLike | None = None,
                 http_client: httpx.AsyncClient | None = None, retry_policy: RetryPolicy | None = None) -> None:
        tenant_id, client_id, token_file_path, authority = workload_settings(tenant_id, client_id, token_file_path,
                                                                             authority)
        super().__init__(tenant_id, federated_auth(client_id, token_file_path), authority=authority, ca=ca,
                         http_client=http_client, retry_policy=retry_policy)
        self.token_file = Path(token_file_path)


class ManagedIdentityCredential(ManagedIdentityBase, _AsyncBase):
    """A managed identity from the host agent (see `keyless.client.ManagedIdentityCredential`), asynchronously."""

    def __init__(self, *, client_id: str | None = None, object_id: str | None = None,
                 resource_id: str | None = None, socket_path: PathLike | None = None, endpoint: str | None = None,
                 retry_policy: RetryPolicy | None = None) -> None:
        self._init_managed(client_id, object_id, resource_id, socket_path, endpoint, retry_policy)
        self._init_io(None, lambda: httpx.AsyncClient(
            timeout=httpx.Timeout(MANAGED_TIMEOUT[1], connect=MANAGED_TIMEOUT[0]), follow_redirects=False,
            trust_env=False))
        self._socket_http: httpx.AsyncClient | None = None

    def _client_for(self, request: HttpRequest) -> httpx.AsyncClient:
        if request.unix_socket is None:
            return self._http
        if self._socket_http is None:
            self._socket_http = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=request.unix_socket), follow_redirects=False,
                trust_env=False, timeout=httpx.Timeout(MANAGED_TIMEOUT[1], connect=MANAGED_TIMEOUT[0]))
        return self._socket_http

    async def close(self) -> None:
        await super().close()
        if self._socket_http is not None:
            await self._socket_http.aclose()
