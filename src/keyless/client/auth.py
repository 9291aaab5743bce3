"""How a credential proves who it is in a token request (RFC 6749 §2.3.1 `client_secret_post`,
RFC 7523 `private_key_jwt`, and a federated client assertion): each method contributes its form fields,
and says whether it needs the tenant's metadata (an assertion's audience is the issuer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keyless.client.assertions import CLIENT_ASSERTION_TYPE
from keyless.client.errors import TokenRequestError


@dataclass(frozen=True)
class Metadata:
    issuer: str
    token_endpoint: str


class ClientAuth(Protocol):
    """How a credential proves who it is in the token request body."""

    @property
    def client_id(self) -> str: ...

    @property
    def needs_metadata(self) -> bool: ...

    def form(self, metadata: Metadata | None) -> dict[str, str]: ...

    def secrets(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class SecretAuth:
    """`client_secret_post`."""

    client_id: str
    client_secret: str = field(repr=False)
    needs_metadata: bool = False

    def form(self, metadata: Metadata | None) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret}

    def secrets(self) -> Sequence[str]:
        return (self.client_secret,)


@dataclass(frozen=True)
class AssertionAuth:
    """`private_key_jwt`: `sign(audience)` returns a new assertion (fresh `jti`) for the tenant's issuer."""

    client_id: str
    sign: Callable[[str], str] = field(repr=False)
    needs_metadata: bool = True

    def form(self, metadata: Metadata | None) -> dict[str, str]:
        if metadata is None:
            raise TokenRequestError("a client assertion needs the tenant's issuer")
        return {"client_id": self.client_id, "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": self.sign(metadata.issuer)}

    def secrets(self) -> Sequence[str]:
        return ()


@dataclass(frozen=True)
class FederatedAuth:
    """A token from an issuer the client's federated credential trusts (a Kubernetes service-account
    token, a CI job's OIDC token), sent as the client assertion. `read()` is called for every request:
    platforms rotate the token file underneath a running workload."""

    client_id: str
    read: Callable[[], str] = field(repr=False)
    needs_metadata: bool = False

    def form(self, metadata: Metadata | None) -> dict[str, str]:
        return {"client_id": self.client_id, "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": self.read()}

    def secrets(self) -> Sequence[str]:
        return ()
