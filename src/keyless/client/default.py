"""`DefaultCredential`: one credential that works wherever the application runs, trying in order

1. **environment** — `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_AUTHORITY_HOST` and either
   `AZURE_CLIENT_SECRET` or `AZURE_CLIENT_CERTIFICATE_PATH` (+ `AZURE_CLIENT_CERTIFICATE_PASSWORD`);
2. **workload identity** — the same plus `AZURE_FEDERATED_TOKEN_FILE`;
3. **managed identity** — the Keyless host agent (its socket, else its loopback endpoint), for the
   identity `managed_identity_client_id` or `AZURE_CLIENT_ID` names, else the host's own.

The variable names are Azure's, so a deployment configured for azure-identity needs nothing else. A
link that is not set up here is skipped; the first link that answers is kept for every later call.
A link that is set up but refused (a wrong secret) ends the search with that error, as in
azure-identity: falling through to another identity would hide the mistake. When no link is set up,
`CredentialUnavailableError` lists each link's reason.

4. **developer login** — the profile `keyless login APP` writes on a workstation
   (`KEYLESS_DEVELOPER_PROFILE`, default `~/.config/keyless/developer.json`): a certificate credential
   of the developer's own application, whose key was made on that workstation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from keyless.client import aio
from keyless.client._base import PathLike
from keyless.client.assertions import CredentialError
from keyless.client.credentials import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from keyless.client.errors import CredentialUnavailableError
from keyless.client.tokens import AccessToken, AccessTokenInfo, TokenRequestOptions
from keyless.errors import KeylessError

if TYPE_CHECKING:
    from keyless.client.adapters import AsyncHttpxAuth, HttpxAuth
    from keyless.client.requests_adapter import RequestsAuth

T = TypeVar("T")
C = TypeVar("C")
DEVELOPER_KEY = "developer.key"
DEVELOPER_CERTIFICATE = "developer.pem"


def developer_profile_path() -> Path:
    return Path(os.environ.get("KEYLESS_DEVELOPER_PROFILE") or Path.home() / ".config" / "keyless" / "developer.json")


class _NotSetUp(KeylessError):
    """This link is simply not configured here (as opposed to configured and broken)."""


def _developer(make_cert: Callable[..., C], ca: PathLike | None) -> C:
    """The developer login's certificate credential, from the profile `keyless login` wrote."""
    path = developer_profile_path()
    try:
        profile = json.loads(path.read_text())
    except FileNotFoundError:
        raise _NotSetUp(f"no developer profile at {path} (keyless login APP makes one)") from None
    folder = path.parent
    return make_cert(profile["tenant"], profile["client_id"],
                     certificate_path=folder / profile.get("certificate", DEVELOPER_CERTIFICATE),
                     private_key_path=folder / profile.get("private_key", DEVELOPER_KEY),
                     authority=profile["authority"], ca=ca or profile.get("ca"))


def _links(make_secret: Callable[..., C], make_cert: Callable[..., C], make_workload: Callable[..., C],
           make_managed: Callable[..., C], *, ca: PathLike | None,
           managed_identity_client_id: str | None) -> list[tuple[str, C | str]]:
    """(name, credential or the reason it is not set up here), in chain order."""
    env = os.environ
    ca = ca or env.get("KEYLESS_CA")
    tenant, client, authority = env.get("AZURE_TENANT_ID"), env.get("AZURE_CLIENT_ID"), env.get("AZURE_AUTHORITY_HOST")
    links: list[tuple[str, C | str]] = []
    base = {"AZURE_TENANT_ID": tenant, "AZURE_CLIENT_ID": client, "AZURE_AUTHORITY_HOST": authority}
    missing = [name for name, value in base.items() if not value]

    def build(name: str, make: Callable[[], C]) -> None:
        try:
            links.append((name, make()))
        except _NotSetUp as exc:
            links.append((name, str(exc)))
        except (ValueError, CredentialError, OSError, KeyError) as exc:
            links.append((name, f"set up but unusable: {exc}"))

    if env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        if missing:
            links.append(("environment", "needs " + ", ".join(missing)))
        elif env.get("AZURE_CLIENT_SECRET"):
            build("environment", lambda: make_secret(tenant, client, env["AZURE_CLIENT_SECRET"], authority=authority,
                                                     ca=ca))
        else:
            build("environment", lambda: make_cert(
                tenant, client, certificate_path=env["AZURE_CLIENT_CERTIFICATE_PATH"],
                password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"), authority=authority, ca=ca))
    else:
        links.append(("environment", "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH is not set"))
    if env.get("AZURE_FEDERATED_TOKEN_FILE"):
        build("workload identity", lambda: make_workload(ca=ca))
    else:
        links.append(("workload identity", "AZURE_FEDERATED_TOKEN_FILE is not set"))
    build("managed identity", lambda: make_managed(client_id=managed_identity_client_id or client))
    build("developer login", lambda: _developer(make_cert, ca))
    return links


def _unavailable(reasons: list[str]) -> CredentialUnavailableError:
    return CredentialUnavailableError("DefaultCredential found no usable credential: " + "; ".join(reasons))


class DefaultCredential:
    """The chain above, synchronously. Satisfies azure-core's `TokenCredential` and `SupportsTokenInfo`."""

    def __init__(self, *, ca: PathLike | None = None, managed_identity_client_id: str | None = None) -> None:
        self._links = _links(ClientSecretCredential, CertificateCredential, WorkloadIdentityCredential,
                             ManagedIdentityCredential, ca=ca, managed_identity_client_id=managed_identity_client_id)
        self._chosen: Any = None

    def __repr__(self) -> str:
        return f"DefaultCredential(links={[name for name, _ in self._links]!r}, chosen={self._chosen!r})"

    def _first(self, call: Callable[[Any], T]) -> T:
        if self._chosen is not None:
            return call(self._chosen)
        reasons = []
        for name, link in self._links:
            if isinstance(link, str):
                reasons.append(f"{name}: {link}")
                continue
            try:
                result = call(link)
            except CredentialUnavailableError as exc:
                reasons.append(f"{name}: {exc}")
                continue
            self._chosen = link
            return result
        raise _unavailable(reasons)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token: AccessToken = self._first(lambda c: c.get_token(*scopes, **kwargs))
        return token

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        info: AccessTokenInfo = self._first(lambda c: c.get_token_info(*scopes, options=options))
        return info

    def auth(self, *scopes: str) -> HttpxAuth:
        from keyless.client.adapters import HttpxAuth

        return HttpxAuth(self, scopes)

    def requests_auth(self, *scopes: str) -> RequestsAuth:
        from keyless.client.requests_adapter import RequestsAuth

        return RequestsAuth(self, scopes)

    def close(self) -> None:
        for _, link in self._links:
            if not isinstance(link, str):
                link.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncDefaultCredential:
    """The chain above, asynchronously (`keyless.client.aio`)."""

    def __init__(self, *, ca: PathLike | None = None, managed_identity_client_id: str | None = None) -> None:
        self._links = _links(aio.ClientSecretCredential, aio.CertificateCredential, aio.WorkloadIdentityCredential,
                             aio.ManagedIdentityCredential, ca=ca,
                             managed_identity_client_id=managed_identity_client_id)
        self._chosen: Any = None

    def __repr__(self) -> str:
        return f"AsyncDefaultCredential(links={[name for name, _ in self._links]!r}, chosen={self._chosen!r})"

    async def _first(self, call: Callable[[Any], Any]) -> Any:
        if self._chosen is not None:
            return await call(self._chosen)
        reasons = []
        for name, link in self._links:
            if isinstance(link, str):
                reasons.append(f"{name}: {link}")
                continue
            try:
                result = await call(link)
            except CredentialUnavailableError as exc:
                reasons.append(f"{name}: {exc}")
                continue
            self._chosen = link
            return result
        raise _unavailable(reasons)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token: AccessToken = await self._first(lambda c: c.get_token(*scopes, **kwargs))
        return token

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        info: AccessTokenInfo = await self._first(lambda c: c.get_token_info(*scopes, options=options))
        return info

    def auth(self, *scopes: str) -> AsyncHttpxAuth:
        from keyless.client.adapters import AsyncHttpxAuth

        return AsyncHttpxAuth(self, scopes)

    async def close(self) -> None:
        for _, link in self._links:
            if not isinstance(link, str):
                await link.close()

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
