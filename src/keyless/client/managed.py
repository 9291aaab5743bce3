"""The sans-IO flow of a managed-identity token from the host agent (docs/agent.md): Azure IMDS-style
requests over loopback TCP or the agent's Unix socket, driven by the same `exchange` as every token."""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

from keyless.client.core import Action, HttpRequest, Outcome, RetryPolicy, Rng, Token, exchange, parse_token_response
from keyless.client.errors import CredentialUnavailableError, TokenRequestError

MANAGED_IDENTITY_PATH = "/metadata/identity/oauth2/token"
MANAGED_IDENTITY_API_VERSION = "2018-02-01"
SOCKET_BASE = "http://localhost"  # the Host the agent expects; the bytes go over the Unix socket


@dataclass(frozen=True)
class IdentitySelector:
    """Which of the host's identities: none given = the system-assigned one (or, on the agent's socket,
    the identity bound to the calling user)."""

    client_id: str | None = None
    object_id: str | None = None
    resource_id: str | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.client_id, self.object_id, self.resource_id)) > 1:
            raise ValueError("name the identity by at most one of client_id, object_id and resource_id")

    def params(self) -> dict[str, str]:
        if self.client_id is not None:
            return {"client_id": self.client_id}
        if self.object_id is not None:
            return {"object_id": self.object_id}
        if self.resource_id is not None:
            return {"msi_res_id": self.resource_id}
        return {}


def scope_to_resource(scopes: Sequence[str]) -> str:
    """Managed-identity endpoints take one `resource`, the scope without `/.default`."""
    if len(scopes) != 1:
        raise ValueError("a managed identity token is for exactly one scope")
    scope = scopes[0]
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope


def managed_identity_request(base: str, resource: str, selector: IdentitySelector,
                             unix_socket: str | None = None) -> HttpRequest:
    from urllib.parse import urlencode

    query = urlencode({"api-version": MANAGED_IDENTITY_API_VERSION, "resource": resource, **selector.params()})
    return HttpRequest("GET", f"{base}{MANAGED_IDENTITY_PATH}?{query}", {"Metadata": "true",
                                                                       "Accept": "application/json"},
                       unix_socket=unix_socket)


def managed_identity_flow(
    base: str,
    scopes: Sequence[str],
    selector: IdentitySelector,
    *,
    unix_socket: str | None,
    policy: RetryPolicy,
    clock: Callable[[], float],
    rng: Rng = random.uniform,
) -> Generator[Action, Outcome, Token]:
    """One token from the host agent. An agent that cannot be reached is `CredentialUnavailableError`
    (never remembered: the next call asks again); its refusals are `OAuthError` as from the server."""
    resource = scope_to_resource(scopes)
    try:
        response = yield from exchange(lambda: managed_identity_request(base, resource, selector, unix_socket),
                                       policy, clock, rng)
    except TokenRequestError as exc:
        where = f"the agent's socket {unix_socket}" if unix_socket else base
        raise CredentialUnavailableError(f"no managed identity endpoint at {where} ({exc})") from None
    return parse_token_response(response, clock())
