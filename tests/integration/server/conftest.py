"""Helpers for HTTP-level tests against a real `keyless serve`."""

from __future__ import annotations

import base64
import json
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyless.verify import TokenValidator
from tests.support.server import RunningServer


def client_for(server: RunningServer) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=10, follow_redirects=False)


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with client_for(server) as c:
        yield c


@pytest.fixture
def uri() -> str:
    return f"api://it-{uuid.uuid4().hex[:10]}"


def token_request(http: httpx.Client, server: RunningServer, data: dict[str, str], *, tenant: str | None = None,
                  headers: dict[str, str] | None = None) -> httpx.Response:
    url = f"{server.url}/{tenant or server.tenant_id}/oauth2/v2.0/token"
    return http.post(url, data=data, headers=headers)


def secret_post(client_id: str, secret: str, scope: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": scope}


def claims_of(token: str) -> dict[str, Any]:
    """Unverified payload, for tests that check claims after another test proved the signature."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def validate(server: RunningServer, http: httpx.Client, token: str, audience: str) -> dict[str, Any]:
    """Verify signature and claims the way a resource server does, with the published JWKS."""
    validator = TokenValidator(issuer=server.issuer, audience=audience, algorithms=["RS256"], http=http)
    return validator.validate(token).claims


def header_of(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


def wrong(secret: str) -> str:
    return secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
