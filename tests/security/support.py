"""Helpers shared by the catalog tests that run against a real `keyless serve` over TLS."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import httpx

from tests.support.server import Admin, RunningServer

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
AUTH_FAILED = {"error": "invalid_client", "error_description": "client authentication failed (invalid_client)"}
BASIC_CHALLENGE = 'Basic realm="keyless"'
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth", "r", "t"}
RFC7638_REQUIRED = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"),
                    "oct": ("k", "kty")}


def invalid_request(description: str) -> dict[str, str]:
    return {"error": "invalid_request", "error_description": description}


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1 / Appendix B: form-urlencode each part, then base64 the pair."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def b64u_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_header(token: str) -> dict[str, Any]:
    return dict(json.loads(b64u_decode(token.split(".")[0])))


def jwt_claims(token: str) -> dict[str, Any]:
    return dict(json.loads(b64u_decode(token.split(".")[1])))


def rfc7638_thumbprint(jwk: dict[str, Any]) -> str:
    """Computed here independently of keyless.crypto: required members only, sorted, no whitespace."""
    members = {m: jwk[m] for m in RFC7638_REQUIRED[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode("ascii")


def stable_headers(resp: httpx.Response) -> dict[str, str]:
    """Response headers without the ones that legitimately vary between two requests."""
    return {k: v for k, v in resp.headers.items() if k not in {"date"}}


def assert_answer(resp: httpx.Response, status: int, body: dict[str, Any], *,
                  challenge: bool = False, extra_headers: dict[str, str] | None = None) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == body, resp.text  # the answer that came instead, for a failure to say
    assert "access_token" not in resp.text
    for name, value in NO_STORE.items():
        assert resp.headers.get(name) == value
    assert resp.headers.get("www-authenticate") == (BASIC_CHALLENGE if challenge else None)
    for name, value in (extra_headers or {}).items():
        assert resp.headers.get(name) == value


@dataclass
class SecWorld:
    """Per server: one resource with a role, a client granted it, a client with no grant, an HTTP client."""

    server: RunningServer
    admin: Admin
    http: httpx.Client
    resource_uri: str
    client_id: str
    secret: str
    ungranted_id: str
    ungranted_secret: str
    tokens_seen: list[str] = field(default_factory=list)
    secrets_seen: list[str] = field(default_factory=list)

    @property
    def scope(self) -> str:
        return f"{self.resource_uri}/.default"

    def form(self, **params: str | None) -> dict[str, str]:
        base: dict[str, str | None] = {"grant_type": "client_credentials", "client_id": self.client_id,
                                       "client_secret": self.secret, "scope": self.scope}
        base.update(params)
        return {k: v for k, v in base.items() if v is not None}

    def token(self, data: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        resp = self.http.post(self.server.token_endpoint, data=data if data is not None else self.form(), **kwargs)
        if resp.status_code == 200:
            self.tokens_seen.append(resp.json()["access_token"])
        return resp

    def raw(self, method: str, url: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, url or self.server.token_endpoint, **kwargs)

    def new_client(self, *, grant: bool = True) -> tuple[str, str]:
        client = self.admin.app(f"sec-client-{uuid.uuid4().hex[:8]}")
        secret = str(self.admin.secret(client["client_id"])["secret"])
        self.secrets_seen.append(secret)
        if grant:
            self.admin.grant(client["client_id"], self.resource_uri, "Data.Read")
        return str(client["client_id"]), secret

    def manage(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        """A management API call through raw HTTP, so that error answers can be inspected."""
        bearer = token or self.admin.api.token()
        url = f"{self.server.url}/{self.server.tenant_id}/manage/v1{path}"
        return self.http.request(method, url, headers={"Authorization": f"Bearer {bearer}"}, **kwargs)

    def jwks(self) -> dict[str, Any]:
        resp = self.http.get(f"{self.server.url}/{self.server.tenant_id}/discovery/v2.0/keys")
        assert resp.status_code == 200
        return dict(resp.json())

    def kids(self) -> list[str]:
        return [k["kid"] for k in self.jwks()["keys"]]


@contextmanager
def sec_world(server: RunningServer) -> Iterator[SecWorld]:
    admin = Admin(server)
    resource_uri = f"api://sec-{uuid.uuid4().hex[:10]}"
    admin.app(f"sec-resource-{uuid.uuid4().hex[:6]}", identifier_uri=resource_uri, roles=("Data.Read",))
    with server.http() as http:
        world = SecWorld(server=server, admin=admin, http=http, resource_uri=resource_uri, client_id="", secret="",
                         ungranted_id="", ungranted_secret="")
        world.client_id, world.secret = world.new_client()
        world.ungranted_id, world.ungranted_secret = world.new_client(grant=False)
        try:
            yield world
        finally:
            admin.api.http.close()
            world.admin.api.http.close()  # a test may have replaced it (after retiring the key it signed with)
