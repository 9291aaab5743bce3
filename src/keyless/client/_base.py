"""What the sync and async credentials share besides the sans-IO core: configuration, the cache,
the decision whether a cached token can be served, and loading certificate credentials."""

from __future__ import annotations

import logging
import os
import random
import ssl
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from keyless.client.assertions import CredentialError, build_client_assertion, load_certificate_files
from keyless.client.auth import AssertionAuth, ClientAuth, FederatedAuth, Metadata, SecretAuth
from keyless.client.core import NO_RETRY, Action, Outcome, RetryPolicy, Token, scope_key, token_flow
from keyless.client.managed import SOCKET_BASE, IdentitySelector, managed_identity_flow
from keyless.client.tokens import AccessToken, AccessTokenInfo, make_access_token, make_access_token_info

log = logging.getLogger("keyless.client")

# After a failed proactive refresh the still-valid token is served and the refresh retried this much later.
REFRESH_RETRY_DELAY = 30.0

PathLike = str | os.PathLike[str]


def tls_context(ca: PathLike | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=os.fspath(ca)) if ca is not None else True


def certificate_auth(client_id: str, certificate_path: PathLike, private_key_path: PathLike | None,
                     password: str | bytes | None, send_certificate_chain: bool) -> AssertionAuth:
    key, cert_pem = load_certificate_files(Path(certificate_path),
                                           Path(private_key_path) if private_key_path is not None else None,
                                           password)

    def sign(audience: str) -> str:
        return build_client_assertion(client_id=client_id, audience=audience, private_key=key,
                                      certificate_pem=cert_pem, send_x5c=send_certificate_chain)

    return AssertionAuth(client_id, sign)


class TokenCache:
    """The per-credential token cache and the rules for serving from it, shared by every credential
    (OAuth client credentials and managed identity alike); subclasses say how a token is fetched
    (`_flow`) and add the I/O and the locking."""

    client_id: str | None

    def _init_cache(self, retry_policy: RetryPolicy | None) -> None:
        self._policy = retry_policy or RetryPolicy()
        self._cache: dict[tuple[str, ...], Token] = {}
        self._clock: Callable[[], float] = time.time
        self._rng: Callable[[float, float], float] = random.uniform

    def _key(self, scopes: Sequence[str], tenant_id: str | None) -> tuple[str, ...]:
        return scope_key(scopes)

    def _flow(self, key: tuple[str, ...]) -> Generator[Action, Outcome, Token]:
        raise NotImplementedError

    def _served(self, key: tuple[str, ...], seen: Token | None, force: bool) -> Token | None:
        """The cached token if it may be served without a request (re-checked under the lock: `force`
        is satisfied by a token someone else fetched after the caller looked)."""
        cached = self._cache.get(key)
        if cached is not None and cached.fresh(self._clock()) and (not force or cached is not seen):
            return cached
        return None

    def _after_failure(self, key: tuple[str, ...], cached: Token | None, force: bool, exc: Exception) -> Token:
        """A refresh failed: keep serving a still-valid token (and try again a little later), else raise."""
        now = self._clock()
        if cached is None or force or not cached.usable(now):
            raise exc
        log.warning("token refresh for client %s failed (%s); serving the cached token until it expires",
                    self.client_id or "(managed identity)", type(exc).__name__)
        retry_at = min(now + REFRESH_RETRY_DELAY, cached.expires_on)
        self._cache[key] = replace(cached, refresh_on=retry_at)
        return self._cache[key]

    @staticmethod
    def _token_options(options: Mapping[str, object] | None) -> tuple[bool, str | None]:
        """azure-core's token request options: a `claims` challenge forces a new token; `tenant_id` must be
        ours; `enable_cae` is accepted (Keyless tokens are not revoked early, so there is nothing to enable)."""
        options = options or {}
        tenant_id = options.get("tenant_id")
        return options.get("claims") is not None, tenant_id if isinstance(tenant_id, str) else None

    @staticmethod
    def _access_token(token: Token) -> AccessToken:
        return make_access_token(token.access_token, int(token.expires_on))

    @staticmethod
    def _access_token_info(token: Token) -> AccessTokenInfo:
        return make_access_token_info(token.access_token, int(token.expires_on), int(token.refresh_on))


class CredentialBase(TokenCache):
    """An application's credential at the token endpoint: tenant, authority, client authentication."""

    def __init__(self, tenant_id: str, auth: ClientAuth, *, authority: str,
                 retry_policy: RetryPolicy | None = None) -> None:
        if not tenant_id or "/" in tenant_id:
            raise ValueError("tenant_id must be a tenant GUID or name")
        if not authority.startswith("https://"):
            raise ValueError("authority must be an https URL, e.g. https://keyless.example:8443")
        self._init_cache(retry_policy)
        self.tenant_id = tenant_id
        self.client_id = auth.client_id
        self.authority = authority.rstrip("/")
        self._auth = auth
        self._metadata: Metadata | None = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
                f"authority={self.authority!r})")

    def _set_metadata(self, metadata: Metadata) -> None:
        self._metadata = metadata

    def _key(self, scopes: Sequence[str], tenant_id: str | None) -> tuple[str, ...]:
        if tenant_id is not None and tenant_id != self.tenant_id:
            raise ValueError(f"this credential is for tenant {self.tenant_id!r}, not {tenant_id!r}")
        return scope_key(scopes)

    def _flow(self, key: tuple[str, ...]) -> Generator[Action, Outcome, Token]:
        return token_flow(self._auth, key, authority=self.authority, tenant_id=self.tenant_id,
                          metadata=self._metadata, policy=self._policy, clock=self._clock, rng=self._rng,
                          on_metadata=self._set_metadata)


AGENT_SOCKET = "/run/keyless/agent.sock"
AGENT_ENDPOINT = "http://127.0.0.1:50342"
MANAGED_TIMEOUT = (1.0, 10.0)  # connect, everything else: a local agent answers a connect at once or is not there
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def managed_settings(socket_path: PathLike | None, endpoint: str | None) -> tuple[Path | None, str]:
    """Where the host agent is: its Unix socket (KEYLESS_AGENT_SOCKET, default /run/keyless/agent.sock),
    used when it exists, else its IMDS-style endpoint (KEYLESS_AGENT_ENDPOINT or
    AZURE_POD_IDENTITY_AUTHORITY_HOST, default http://127.0.0.1:50342) — loopback only: a token
    request never leaves the host."""
    socket = socket_path or os.environ.get("KEYLESS_AGENT_SOCKET") or AGENT_SOCKET
    url = (endpoint or os.environ.get("KEYLESS_AGENT_ENDPOINT") or os.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST")
           or AGENT_ENDPOINT).rstrip("/")
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if scheme not in ("http", "https") or host not in _LOOPBACK:
        raise ValueError("the managed identity endpoint must be the local agent (http://127.0.0.1:PORT)")
    return Path(socket), url


class ManagedIdentityBase(TokenCache):
    """A managed identity from the host agent: nothing secret in the application, nothing on the
    network but loopback."""

    def _init_managed(self, client_id: str | None, object_id: str | None, resource_id: str | None,
                      socket_path: PathLike | None, endpoint: str | None, retry_policy: RetryPolicy | None) -> None:
        self._init_cache(retry_policy)
        self._selector = IdentitySelector(client_id, object_id, resource_id)
        self.client_id = client_id
        self._socket, self._endpoint = managed_settings(socket_path, endpoint)
        self._reached = False

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(selector={self._selector!r}, socket={str(self._socket)!r}, "
                f"endpoint={self._endpoint!r})")

    def _flow(self, key: tuple[str, ...]) -> Generator[Action, Outcome, Token]:
        use_socket = self._socket is not None and self._socket.exists()
        # Until the agent has answered once, an unreachable agent is reported at once (no retries), so a
        # chain such as DefaultCredential moves on quickly; after that, outages are retried as usual.
        policy = self._policy if self._reached else NO_RETRY
        token = yield from managed_identity_flow(SOCKET_BASE if use_socket else self._endpoint, key, self._selector,
                                                 unix_socket=str(self._socket) if use_socket else None,
                                                 policy=policy, clock=self._clock, rng=self._rng)
        self._reached = True
        return token


MAX_TOKEN_FILE = 16 * 1024


def read_token_file(path: Path) -> str:
    """The federated token in `path`, read now: platforms rewrite it in place before it expires."""
    try:
        data = path.read_bytes()[: MAX_TOKEN_FILE + 1]
    except OSError as exc:
        raise CredentialError(f"cannot read the federated token file {path}: "
                              f"{exc.strerror or type(exc).__name__}") from None
    token = data.decode("ascii", "replace").strip()
    if not token or len(data) > MAX_TOKEN_FILE or token.count(".") != 2:
        raise CredentialError(f"the federated token file {path} does not hold a compact JWT")
    return token


def federated_auth(client_id: str, token_file: PathLike) -> FederatedAuth:
    if not client_id:
        raise ValueError("client_id is required")
    path = Path(token_file)
    return FederatedAuth(client_id, lambda: read_token_file(path))


def workload_settings(tenant_id: str | None, client_id: str | None, token_file: PathLike | None,
                      authority: str | None) -> tuple[str, str, PathLike, str]:
    """Explicit arguments, else the variables Azure workload identity sets (so a pod configured for
    azure-identity needs nothing else): AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE,
    AZURE_AUTHORITY_HOST."""
    tenant_id = tenant_id or os.environ.get("AZURE_TENANT_ID")
    client_id = client_id or os.environ.get("AZURE_CLIENT_ID")
    token_file = token_file or os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
    authority = authority or os.environ.get("AZURE_AUTHORITY_HOST")
    if not (tenant_id and client_id and token_file and authority):
        missing = [name for name, value in (("tenant_id", tenant_id), ("client_id", client_id),
                                            ("token_file_path", token_file), ("authority", authority)) if not value]
        raise ValueError("workload identity needs " + ", ".join(missing) + " (arguments or the AZURE_* variables)")
    if "://" not in authority:
        authority = "https://" + authority  # a bare host:port, as azure-identity accepts it
    return tenant_id, client_id, token_file, authority


def secret_auth(client_id: str, client_secret: str) -> SecretAuth:
    if not client_id or not client_secret:
        raise ValueError("client_id and client_secret are required")
    return SecretAuth(client_id, client_secret)
