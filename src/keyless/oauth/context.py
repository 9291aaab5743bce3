"""One token request as it moves through the token endpoint's steps (`keyless.oauth.service`), and
what the steps may use besides it (issue 12 scope 3; the shape of node-oidc-provider's `actions/`).

`TokenContext` is filled in order: the parsed request and its client assertion (decoded once, read
by the throttle, client authentication and the sign-in log alike), the grant type, the
authenticated client, and last what was issued. Whatever a step learned is there for the sign-in
record, also when a later step refuses the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keyless.clock import Clock
from keyless.crypto.secrets import SecretHasher
from keyless.domain.federation import FederationReader
from keyless.domain.model import Tenant
from keyless.domain.ports import DirectoryReader, OneTimeUses
from keyless.oauth.client_auth.assertion import ClientAssertion
from keyless.oauth.client_auth.certificates import CertificateCache
from keyless.oauth.client_auth.result import AuthenticatedClient
from keyless.oauth.deferral import Deferral, at_once
from keyless.oauth.errors import InvalidRequest
from keyless.oauth.federation.issuers import IssuerKeys
from keyless.oauth.keyring import KeyRing
from keyless.oauth.request import TokenHttpRequest, TokenRequest


@dataclass(frozen=True)
class FederationContext:
    """Federated client assertions (issue 5) and outbound identity tokens: None turns both off."""

    credentials: FederationReader
    issuer_keys: IssuerKeys


@dataclass(frozen=True)
class TokenEnv:
    """What the steps need beyond the request, for one tenant as currently stored and the URL form it
    was addressed by: storage, keys, time, the issuer, and the URLs an assertion may name as its
    audience (R-CA-3)."""

    directory: DirectoryReader
    hasher: SecretHasher
    clock: Clock
    replay: OneTimeUses
    certificates: CertificateCache
    keyring: KeyRing
    issuer: str
    token_endpoints: frozenset[str]
    federation: FederationContext | None = None
    defer: Deferral = at_once  # public-key operations (`keyless.oauth.deferral`)


@dataclass(slots=True)
class TokenContext:
    tenant: Tenant
    http: TokenHttpRequest
    request: TokenRequest | None = None
    assertion: ClientAssertion | None = None  # the request's client_assertion, decoded once
    method: str | None = None  # the client authentication method the request presented (wire string)
    client: AuthenticatedClient | None = None
    resource: str | None = None  # the audience a token was (or would have been) issued for
    token_id: str | None = None
    response: dict[str, object] = field(default_factory=dict)
    note: str | None = None  # a successful request's `detail` in the sign-in log (a policy in audit mode)

    @property
    def req(self) -> TokenRequest:
        """The parsed request; steps after the first may rely on it."""
        if self.request is None:
            raise InvalidRequest("malformed token request", detail="request_not_parsed")
        return self.request

    def param(self, name: str) -> str | None:
        request = self.request
        return request.params.get(name) if request is not None else None

    @property
    def has_assertion(self) -> bool:
        request = self.request
        return request is not None and ("client_assertion" in request.params
                                        or "client_assertion_type" in request.params)

    def claimed_client_id(self) -> str | None:
        """The client the request says it is, before authentication: for rate limiting and the log."""
        if self.client is not None:
            return self.client.app.client_id
        if self.request is None:
            return None
        if self.request.basic is not None:
            return self.request.basic.client_id
        return self.request.get("client_id") or (self.assertion.subject if self.assertion is not None else None)
