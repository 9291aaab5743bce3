"""The sans-IO core of the Keyless credentials: requests, responses, refresh times and retries.

Nothing here performs I/O. A token acquisition is a generator (`token_flow`) that yields what it
wants done — `Send(HttpRequest)` or `Sleep(seconds)` — and is resumed with the outcome (an
`HttpResponse`, a `TransportFailure`, or `None` after a sleep). The synchronous credentials drive it
with `httpx.Client` and `time.sleep`, the asynchronous ones with `httpx.AsyncClient` and
`asyncio.sleep`, so both share every decision: which form to send, how to read the answer, when to
retry, when to refresh.

Secrets never appear in `repr`, in log records or in exception messages: the client secret lives in
a `SecretAuth` whose `repr` hides it, error descriptions are scrubbed of it, and request forms are
never logged.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keyless.client.auth import ClientAuth, Metadata
from keyless.client.errors import OAuthError, TokenRequestError

log = logging.getLogger("keyless.client")

MAX_RESPONSE_BYTES = 64 * 1024
# A token this close to expiry is not handed out: the caller would present an expired token.
EXPIRY_MARGIN = 30.0
# Below this lifetime the half-life rule would refresh too eagerly to matter; see `refresh_at`.
SHORT_LIFETIME = 600
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


# -- HTTP messages (plain data) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    form: Mapping[str, str] | None = field(default=None, repr=False)  # may hold a secret or an assertion
    unix_socket: str | None = None  # sent over this Unix socket instead of TCP (the host agent)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # keys lower-case
    body: bytes = field(repr=False)

    @classmethod
    def of(cls, status: int, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        return cls(status, {k.lower(): v for k, v in headers.items()}, body)


@dataclass(frozen=True)
class TransportFailure:
    """The request did not produce a response (connection refused, timeout, TLS failure)."""

    reason: str


@dataclass(frozen=True)
class Send:
    request: HttpRequest


@dataclass(frozen=True)
class Sleep:
    seconds: float


Action = Send | Sleep
Outcome = HttpResponse | TransportFailure | None


# -- tokens and refresh times ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A cached access token: absolute expiry and the time it should be proactively refreshed."""

    access_token: str = field(repr=False)
    expires_on: float
    refresh_on: float
    token_type: str = "Bearer"  # noqa: S105  (a token type, not a password)

    def fresh(self, now: float) -> bool:
        """Serve without asking the server."""
        return now < self.refresh_on and self.usable(now)

    def usable(self, now: float) -> bool:
        """Still good to present, although a refresh may be due."""
        return now < self.expires_on - EXPIRY_MARGIN


def refresh_at(issued: float, lifetime: float, refresh_in: float | None = None) -> float:
    """When to refresh a token issued at `issued` that lives `lifetime` seconds.

    The server's `refresh_in` wins when it is given and lies inside the lifetime. Otherwise the token
    is refreshed at half-life: `issued + min(lifetime/2, lifetime - 300)` for tokens of ten minutes
    or more (which is exactly half-life), and at half-life too for shorter ones, where "five minutes
    before expiry" would mean "at once, on every call".
    """
    if lifetime <= 0:
        return issued
    if refresh_in is not None and 0 < refresh_in < lifetime:
        return issued + refresh_in
    if lifetime >= SHORT_LIFETIME:
        return issued + min(lifetime / 2, lifetime - 300)
    return issued + lifetime / 2


def _number(value: object) -> float | None:
    """Entra sends integers; some servers send them as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    if isinstance(value, str) and value.strip().isdigit():
        return float(value.strip())
    return None


def _json_object(body: bytes) -> dict[str, object] | None:
    if len(body) > MAX_RESPONSE_BYTES:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:300]


def parse_error(response: HttpResponse, secrets: Sequence[str] = ()) -> OAuthError | TokenRequestError:
    """An RFC 6749 §5.2 error body as `OAuthError`; anything else as `TokenRequestError`."""
    data = _json_object(response.body)
    error = data.get("error") if data else None
    if isinstance(error, str) and error:
        description = data.get("error_description") if data else None
        text = _scrub(description, secrets) if isinstance(description, str) else None
        return OAuthError(_scrub(error, secrets)[:100], text, response.status)
    return TokenRequestError(f"token endpoint answered HTTP {response.status} without an OAuth error")


def parse_token_response(response: HttpResponse, now: float, secrets: Sequence[str] = ()) -> Token:
    """A 200 token response as a `Token`; any other answer raises `OAuthError` or `TokenRequestError`."""
    if response.status != 200:
        raise parse_error(response, secrets)
    data = _json_object(response.body)
    if data is None:
        raise TokenRequestError("the token response is not a JSON object")
    access_token = data.get("access_token")
    lifetime = _number(data.get("expires_in"))
    token_type = data.get("token_type", "Bearer")
    if not isinstance(access_token, str) or not access_token:
        raise TokenRequestError("the token response has no access_token")
    if lifetime is None or lifetime <= 0:
        raise TokenRequestError("the token response has no valid expires_in")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenRequestError("the token response is not a Bearer token")
    refresh_in = _number(data.get("refresh_in"))
    return Token(access_token, now + lifetime, refresh_at(now, lifetime, refresh_in))


# -- retries -----------------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); None if absent
    or unreadable; never negative."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `max_retries` retries on 429, 5xx and transport errors, with exponential backoff and full
    jitter (`uniform(0, min(max_backoff, base * 2**attempt))`); a `Retry-After` is honoured as the
    minimum wait. The sum of all waits stays under `max_total_wait`: a wait that would exceed it
    ends the retries instead."""

    max_retries: int = 3
    base: float = 0.5
    max_backoff: float = 8.0
    max_total_wait: float = 30.0

    def retryable(self, outcome: HttpResponse | TransportFailure) -> bool:
        return isinstance(outcome, TransportFailure) or outcome.status in RETRYABLE_STATUS

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[float, float], float]) -> float:
        """The wait before retry number `attempt` (0 for the first retry)."""
        backoff = rng(0.0, min(self.max_backoff, self.base * 2**attempt))
        return max(backoff, retry_after) if retry_after is not None else backoff


NO_RETRY = RetryPolicy(max_retries=0)


class Rng(Protocol):
    def __call__(self, a: float, b: float, /) -> float: ...


def exchange(
    request: Callable[[], HttpRequest],
    policy: RetryPolicy,
    clock: Callable[[], float],
    rng: Rng = random.uniform,
) -> Generator[Action, Outcome, HttpResponse]:
    """Send the request (rebuilt for every attempt, so each carries a fresh assertion) until it gets a
    non-retryable response or the policy gives up; return the last response or raise TokenRequestError."""
    waited = 0.0
    attempt = 0
    while True:
        req = request()
        outcome = yield Send(req)
        if outcome is None:
            raise TokenRequestError("no response")  # a driver bug, not a server problem
        if not policy.retryable(outcome):
            assert isinstance(outcome, HttpResponse)
            return outcome
        retry_after = None
        if isinstance(outcome, HttpResponse):
            retry_after = parse_retry_after(outcome.headers.get("retry-after"), clock())
        what = outcome.reason if isinstance(outcome, TransportFailure) else f"HTTP {outcome.status}"
        wait = policy.delay(attempt, retry_after, rng)
        if attempt >= policy.max_retries or waited + wait > policy.max_total_wait:
            log.warning("%s %s failed (%s); giving up after %d attempt(s)", req.method, req.url, what, attempt + 1)
            if isinstance(outcome, HttpResponse):
                return outcome
            raise TokenRequestError(f"cannot reach {req.url}: {outcome.reason}")
        log.info("%s %s failed (%s); retry %d in %.2fs", req.method, req.url, what, attempt + 1, wait)
        yield Sleep(wait)
        waited += wait
        attempt += 1


# -- client authentication and the token flow --------------------------------------------------------------


def discovery_url(authority: str, tenant_id: str) -> str:
    return f"{authority.rstrip('/')}/{tenant_id}/v2.0/.well-known/openid-configuration"


def default_token_endpoint(authority: str, tenant_id: str) -> str:
    return f"{authority.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"


def parse_metadata(response: HttpResponse) -> Metadata:
    if response.status != 200:
        raise TokenRequestError(f"cannot read the OpenID configuration: HTTP {response.status}")
    data = _json_object(response.body)
    issuer = data.get("issuer") if data else None
    endpoint = data.get("token_endpoint") if data else None
    if not isinstance(issuer, str) or not isinstance(endpoint, str):
        raise TokenRequestError("the OpenID configuration has no issuer or token endpoint")
    if not endpoint.startswith("https://"):
        raise TokenRequestError("the OpenID configuration names a token endpoint that is not https")
    return Metadata(issuer, endpoint)


def scope_key(scopes: Sequence[str]) -> tuple[str, ...]:
    """The cache key part for scopes: order and repetition do not matter."""
    if not scopes or not all(isinstance(s, str) and s.strip() for s in scopes):
        raise ValueError("at least one non-empty scope is required, e.g. 'api://orders/.default'")
    return tuple(sorted({s.strip() for s in scopes}))


def token_request(auth: ClientAuth, endpoint: str, scopes: Sequence[str], metadata: Metadata | None, *,
                  resource: str | None = None) -> HttpRequest:
    """The client-credentials request (RFC 6749 §4.4.2) for `scopes`, or, when `resource` is given, for
    that resource indicator instead (RFC 8707 §2: what IMDS callers give the host agent)."""
    target = {"resource": resource} if resource is not None else {"scope": " ".join(scopes)}
    form = {"grant_type": "client_credentials", **target, **auth.form(metadata)}
    return HttpRequest("POST", endpoint, {"Accept": "application/json",
                                          "Content-Type": "application/x-www-form-urlencoded"}, form)


def metadata_flow(
    authority: str, tenant_id: str, policy: RetryPolicy, clock: Callable[[], float], rng: Rng = random.uniform
) -> Generator[Action, Outcome, Metadata]:
    url = discovery_url(authority, tenant_id)
    response = yield from exchange(lambda: HttpRequest("GET", url, {"Accept": "application/json"}), policy, clock,
                                   rng)
    return parse_metadata(response)


def token_flow(
    auth: ClientAuth,
    scopes: Sequence[str],
    *,
    authority: str,
    tenant_id: str,
    metadata: Metadata | None,
    policy: RetryPolicy,
    clock: Callable[[], float],
    rng: Rng = random.uniform,
    on_metadata: Callable[[Metadata], None] | None = None,
) -> Generator[Action, Outcome, Token]:
    """Everything one token acquisition does: discovery when the credential needs the issuer and has
    not cached it (`on_metadata` receives it), then the token request with retries."""
    if auth.needs_metadata and metadata is None:
        metadata = yield from metadata_flow(authority, tenant_id, policy, clock, rng)
        if on_metadata is not None:
            on_metadata(metadata)
    endpoint = metadata.token_endpoint if metadata else default_token_endpoint(authority, tenant_id)
    scope_list = list(scopes)
    log.debug("requesting a token for client %s, scopes %s", auth.client_id, " ".join(scope_list))
    response = yield from exchange(lambda: token_request(auth, endpoint, scope_list, metadata), policy, clock, rng)
    token = parse_token_response(response, clock(), auth.secrets())
    log.debug("token for client %s expires at %d, refresh at %d", auth.client_id, token.expires_on,
              token.refresh_on)
    return token
