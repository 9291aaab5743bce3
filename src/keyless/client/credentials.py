"""Synchronous credentials: `ClientSecretCredential` and `CertificateCredential`.

Both satisfy azure-core's `TokenCredential` and `SupportsTokenInfo` protocols, cache tokens per set of
scopes, refresh them ahead of expiry with one request in flight per scope set, and retry 429/5xx and
transport failures (see `keyless.client.core`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

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
from keyless.client.auth import ClientAuth
from keyless.client.core import Action, HttpRequest, HttpResponse, Outcome, RetryPolicy, Sleep, Token, TransportFailure
from keyless.client.errors import ClientAuthenticationError
from keyless.client.tokens import AccessToken, AccessTokenInfo, TokenRequestOptions

if TYPE_CHECKING:
    from keyless.client.adapters import HttpxAuth
    from keyless.client.requests_adapter import RequestsAuth

T = TypeVar("T")


class _SyncBase(TokenCache):
    """The synchronous half every credential shares: azure-core's protocols, the adapters, one refresh
    in flight per scope set, and driving the sans-IO flow with `httpx.Client`."""

    def _init_io(self, http_client: httpx.Client | None, make: Callable[[], httpx.Client]) -> None:
        self._owns_http = http_client is None
        self._http = http_client or make()
        self._sleep: Callable[[float], None] = time.sleep
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, ...], threading.Lock] = {}

    # -- azure-core TokenCredential / SupportsTokenInfo ------------------------------------------------

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        """A bearer token for `scopes` (e.g. `api://orders/.default`): `.token` and `.expires_on`."""
        return self._access_token(self._get(self._key(scopes, tenant_id), claims is not None))

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """Like `get_token`, with `refresh_on` so azure-core refreshes when this credential would."""
        force, tenant_id = self._token_options(options)
        return self._access_token_info(self._get(self._key(scopes, tenant_id), force))

    # -- adapters --------------------------------------------------------------------------------------

    def auth(self, *scopes: str) -> HttpxAuth:
        """An `httpx.Auth` that sends `Authorization: Bearer …` for `scopes` (for `httpx.Client`)."""
        from keyless.client.adapters import HttpxAuth

        return HttpxAuth(self, scopes)

    def requests_auth(self, *scopes: str) -> RequestsAuth:
        """A `requests.auth.AuthBase` that sends `Authorization: Bearer …` for `scopes`."""
        from keyless.client.requests_adapter import RequestsAuth

        return RequestsAuth(self, scopes)

    # -- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- cache and I/O ---------------------------------------------------------------------------------

    def _lock(self, key: tuple[str, ...]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _get(self, key: tuple[str, ...], force: bool = False) -> Token:
        seen = self._cache.get(key)
        if seen is not None and seen.fresh(self._clock()) and not force:
            return seen
        lock = self._lock(key)
        if seen is not None and seen.usable(self._clock()) and not force:
            if not lock.acquire(blocking=False):
                return seen  # someone else is refreshing; the current token is still good
        else:
            lock.acquire()
        try:
            served = self._served(key, seen, force)
            if served is not None:
                return served
            cached = self._cache.get(key)
            try:
                token = self._drive(self._flow(key))
            except ClientAuthenticationError as exc:
                return self._after_failure(key, cached, force, exc)
            self._cache[key] = token
            return token
        finally:
            lock.release()

    def _client_for(self, request: HttpRequest) -> httpx.Client:
        return self._http

    def _drive(self, flow: Generator[Action, Outcome, T]) -> T:
        try:
            action = next(flow)
            while True:
                outcome: Outcome = None
                if isinstance(action, Sleep):
                    self._sleep(action.seconds)
                else:
                    outcome = self._send(action.request)
                action = flow.send(outcome)
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _send(self, request: HttpRequest) -> HttpResponse | TransportFailure:
        try:
            resp = self._client_for(request).request(request.method, request.url, headers=request.headers,
                                                     data=request.form)
        except httpx.TransportError as exc:
            return TransportFailure(type(exc).__name__)
        return HttpResponse.of(resp.status_code, resp.headers, resp.content)


class _SyncCredential(CredentialBase, _SyncBase):
    def __init__(self, tenant_id: str, auth: ClientAuth, *, authority: str, ca: PathLike | None,
                 http_client: httpx.Client | None, retry_policy: RetryPolicy | None) -> None:
        CredentialBase.__init__(self, tenant_id, auth, authority=authority, retry_policy=retry_policy)
        self._init_io(http_client, lambda: httpx.Client(verify=tls_context(ca), timeout=10, follow_redirects=False))


class ClientSecretCredential(_SyncCredential):
    """An application's client secret (`client_secret_post`)."""

    def __init__(self, tenant_id: str, client_id: str, client_secret: str, *, authority: str,
                 ca: PathLike | None = None, http_client: httpx.Client | None = None,
                 retry_policy: RetryPolicy | None = None) -> None:
        super().__init__(tenant_id, secret_auth(client_id, client_secret), authority=authority, ca=ca,
                         http_client=http_client, retry_policy=retry_policy)


class CertificateCredential(_SyncCredential):
    """A certificate credential: every token request carries a new client assertion (fresh `jti`, 5 minutes,
    `aud` = the tenant's issuer from discovery, which every assertion-audience mode accepts) signed with
    the private key, which never leaves this host."""

    def __init__(self, tenant_id: str, client_id: str, *, certificate_path: PathLike,
                 private_key_path: PathLike | None = None, password: str | bytes | None = None, authority: str,
                 ca: PathLike | None = None, send_certificate_chain: bool = False,
                 http_client: httpx.Client | None = None, retry_policy: RetryPolicy | None = None) -> None:
        auth = certificate_auth(client_id, certificate_path, private_key_path, password, send_certificate_chain)
        super().__init__(tenant_id, auth, authority=authority, ca=ca, http_client=http_client,
                         retry_policy=retry_policy)


class WorkloadIdentityCredential(_SyncCredential):
    """Workload identity federation: the platform's token (Kubernetes projected service-account token,
    CI OIDC token) in a file, exchanged for a Keyless token; the file is re-read for every request.
    With no arguments it reads what Azure workload identity sets: AZURE_TENANT_ID, AZURE_CLIENT_ID,
    AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST."""

    def __init__(self, *, tenant_id: str | None = None, client_id: str | None = None,
                 token_file_path: PathLike | None = None, authority: str | None = None, ca: PathLike | None = None,
                 http_client: httpx.Client | None = None, retry_policy: RetryPolicy | None = None) -> None:
        tenant_id, client_id, token_file_path, authority = workload_settings(tenant_id, client_id, token_file_path,
                                                                             authority)
        super().__init__(tenant_id, federated_auth(client_id, token_file_path), authority=authority, ca=ca,
                         http_client=http_client, retry_policy=retry_policy)
        self.token_file = Path(token_file_path)


class ManagedIdentityCredential(ManagedIdentityBase, _SyncBase):
    """A managed identity from the Keyless host agent on this host: over its Unix socket when it exists
    (the agent then knows the calling user and applies workload bindings), else over its IMDS-style
    endpoint on loopback. No argument: the host's system-assigned identity (or, on the socket, the one
    bound to this user); `client_id`, `object_id` or `resource_id` name a user-assigned identity."""

    def __init__(self, *, client_id: str | None = None, object_id: str | None = None,
                 resource_id: str | None = None, socket_path: PathLike | None = None, endpoint: str | None = None,
                 retry_policy: RetryPolicy | None = None) -> None:
        self._init_managed(client_id, object_id, resource_id, socket_path, endpoint, retry_policy)
        self._init_io(None, lambda: httpx.Client(timeout=httpx.Timeout(MANAGED_TIMEOUT[1], connect=MANAGED_TIMEOUT[0]),
                                                 follow_redirects=False, trust_env=False))
        self._socket_http: httpx.Client | None = None

    def _client_for(self, request: HttpRequest) -> httpx.Client:
        if request.unix_socket is None:
            return self._http
        if self._socket_http is None:
            self._socket_http = httpx.Client(
                transport=httpx.HTTPTransport(uds=request.unix_socket), follow_redirects=False, trust_env=False,
                timeout=httpx.Timeout(MANAGED_TIMEOUT[1], connect=MANAGED_TIMEOUT[0]))
        return self._socket_http

    def close(self) -> None:
        super().close()
        if self._socket_http is not None:
            self._socket_http.close()
