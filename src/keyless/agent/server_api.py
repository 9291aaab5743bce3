"""The agent's calls to the Keyless server: enrollment, renewal, the host's entitlements, tokens.

Every authenticated call carries a fresh client assertion signed with the host key (RFC 7523,
`iss` = `sub` = the identity asked for, `aud` = the tenant's issuer), so the server checks, on each
request, that this host may act for that identity right now. Token requests are made by the one
token client, `keyless.client` (issue 12 item 4): its sans-IO `token_request` and `exchange` with
the host's `AssertionAuth`, driven here over the agent's own TLS connection. The agent does not
retry inside a request: its token cache refreshes ahead of expiry and backs off (`agent/cache.py`).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from keyless.client.aio import drive
from keyless.client.auth import ClientAuth, Metadata
from keyless.client.core import (
    NO_RETRY,
    HttpRequest,
    HttpResponse,
    Token,
    exchange,
    parse_error,
    parse_token_response,
    token_request,
)
from keyless.client.errors import OAuthError, TokenRequestError
from keyless.clock import Clock
from keyless.errors import KeylessError

MAX_RESPONSE = 256 * 1024
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN, not a secret


class ServerUnavailable(KeylessError):
    """The server could not be reached or answered with a server error: try again later."""


class ServerRefused(KeylessError):
    """The server refused the request (OAuth error): `error` says why."""

    def __init__(self, error: str, description: str | None, status: int) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Enrolled:
    tenant_id: str
    host_id: str
    host_name: str
    system_client_id: str
    certificate_pem: bytes
    not_before: float
    not_after: float
    issuer: str
    token_endpoint: str


def _enrolled(data: Mapping[str, Any]) -> Enrolled:
    try:
        return Enrolled(
            tenant_id=str(data["tenant_id"]), host_id=str(data["host_id"]), host_name=str(data["host_name"]),
            system_client_id=str(data["system_client_id"]), certificate_pem=str(data["certificate"]).encode("ascii"),
            not_before=float(data["not_before"]), not_after=float(data["not_after"]), issuer=str(data["issuer"]),
            token_endpoint=str(data["token_endpoint"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ServerUnavailable("the server's enrollment answer is incomplete") from None


def trust(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


class ServerApi:
    def __init__(self, server: str, tenant: str, *, ca_file: str | None, clock: Clock, timeout: float = 10.0) -> None:
        if not server.startswith("https://"):
            raise KeylessError("the agent talks to the server over https only")
        self.server = server.rstrip("/")
        self.tenant = tenant
        self._clock = clock
        self._http = httpx.AsyncClient(verify=trust(ca_file), timeout=timeout, follow_redirects=False)

    async def close(self) -> None:
        await self._http.aclose()

    def _url(self, path: str) -> str:
        return f"{self.server}/{self.tenant}/{path}"

    async def _post(self, url: str, **kwargs: Any) -> HttpResponse:
        try:
            resp = await self._http.post(url, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"cannot reach the server: {type(exc).__name__}") from None
        return self._answer(resp)

    @staticmethod
    def _answer(resp: httpx.Response) -> HttpResponse:
        if resp.status_code >= 500 or resp.status_code == 429:
            raise ServerUnavailable(f"the server answered HTTP {resp.status_code}")
        return HttpResponse.of(resp.status_code, dict(resp.headers), resp.content[:MAX_RESPONSE])

    async def _send(self, request: HttpRequest) -> HttpResponse:
        """One request of a `keyless.client` flow, over this agent's connection to the server."""
        try:
            resp = await self._http.request(request.method, request.url, headers=request.headers, data=request.form)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"cannot reach the server: {type(exc).__name__}") from None
        return self._answer(resp)

    @staticmethod
    def _refused(resp: HttpResponse) -> ServerRefused:
        err = parse_error(resp)
        if isinstance(err, OAuthError):
            return ServerRefused(err.error, err.error_description, resp.status)
        return ServerRefused("invalid_response", str(err), resp.status)

    async def _json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self._post(self._url(path), json=body)
        if resp.status != 200:
            raise self._refused(resp)
        try:
            data = json.loads(resp.body)
        except ValueError:
            raise ServerUnavailable("the server's answer is not JSON") from None
        if not isinstance(data, dict):
            raise ServerUnavailable("the server's answer is not a JSON object")
        return data

    async def enroll(self, join_token: str, csr_pem: bytes) -> Enrolled:
        return _enrolled(await self._json("agent/v1/enroll", {"join_token": join_token, "csr": csr_pem.decode()}))

    async def renew(self, assertion: str, csr_pem: bytes) -> Enrolled:
        return _enrolled(await self._json("agent/v1/renew", {"client_assertion": assertion,
                                                             "csr": csr_pem.decode()}))

    async def host_view(self, assertion: str) -> dict[str, Any]:
        return await self._json("agent/v1/host", {"client_assertion": assertion})

    async def _token(self, auth: ClientAuth, issuer: str, scopes: tuple[str, ...],
                     resource: str | None = None) -> tuple[Token, HttpResponse]:
        metadata = Metadata(issuer, self._url("oauth2/v2.0/token"))
        flow = exchange(lambda: token_request(auth, metadata.token_endpoint, scopes, metadata, resource=resource),
                        NO_RETRY, self._clock.now)
        try:
            resp = await drive(flow, self._send)
            return parse_token_response(resp, self._clock.now()), resp
        except OAuthError as exc:
            raise ServerRefused(exc.error, exc.error_description, exc.status) from None
        except TokenRequestError as exc:
            raise ServerUnavailable(str(exc)) from None

    async def token(self, auth: ClientAuth, issuer: str, resource: str) -> Token:
        """A token for `resource` as the managed identity `auth.client_id`, whose assertions are
        signed for `issuer` (the tenant's)."""
        return (await self._token(auth, issuer, (), resource=resource))[0]

    async def identity_token(self, auth: ClientAuth, issuer: str, audience: str) -> Token:
        """An identity token for `audience` (on the identity's allowlist), signed by the tenant: the
        token endpoint's outbound identity-token path, asked exactly as for an access token. An
        access token (the audience has become a resource of the tenant) is refused, never relayed."""
        token, resp = await self._token(auth, issuer, (f"{audience}/.default",))
        try:
            issued = json.loads(resp.body).get("issued_token_type")
        except ValueError:
            issued = None
        if issued != ID_TOKEN_TYPE:
            raise ServerRefused("invalid_scope", "the audience is not an identity-token audience", resp.status)
        return token
