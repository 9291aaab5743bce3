"""Discovery metadata, the JWKS, health and metrics over real HTTPS."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from tests.integration.server.conftest import header_of, secret_post, token_request
from tests.support.server import Admin, RunningServer

ENDPOINTS = ("issuer", "token_endpoint", "authorization_endpoint", "jwks_uri")


def _discovery_paths(tenant: str) -> list[str]:
    return [f"/{tenant}/v2.0/.well-known/openid-configuration",
            f"/.well-known/oauth-authorization-server/{tenant}/v2.0"]


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format; 0 if the series does not exist yet."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name):line.rindex("}") + 1]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("spelling", ["guid", "name"])
@pytest.mark.parametrize("which", [0, 1], ids=["openid", "rfc8414"])
def test_discovery_document(server: RunningServer, http: httpx.Client, which: int, spelling: str) -> None:
    tenant = server.tenant_id if spelling == "guid" else "default"
    resp = http.get(server.url + _discovery_paths(tenant)[which])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    doc = resp.json()
    assert doc["issuer"] == server.issuer
    assert doc["token_endpoint"] == server.token_endpoint
    for name in ENDPOINTS:
        parts = urlsplit(doc[name])
        assert parts.scheme == "https", name
        assert f"{parts.scheme}://{parts.netloc}" == server.url, name
        # MSAL derives the tenant (its cache realm) from the first path segment; always the GUID.
        assert parts.path.split("/")[1] == server.tenant_id, name
    assert "client_credentials" in doc["grant_types_supported"]
    assert "refresh_token" not in doc["grant_types_supported"]


def test_both_discovery_paths_agree(server: RunningServer, http: httpx.Client) -> None:
    docs = [http.get(server.url + p).json() for p in _discovery_paths(server.tenant_id)]
    assert docs[0] == docs[1]


@pytest.mark.parametrize("tenant", ["00000000-0000-4000-8000-0000000000bb", "no-such-tenant"])
def test_unknown_tenant_discovery_and_jwks_are_404(server: RunningServer, http: httpx.Client, tenant: str) -> None:
    for path in [*_discovery_paths(tenant), f"/{tenant}/discovery/v2.0/keys"]:
        resp = http.get(server.url + path)
        assert resp.status_code == 404, path
        assert "issuer" not in resp.text and "keys" not in resp.json()


def _jwks_uri(server: RunningServer, http: httpx.Client) -> str:
    return str(http.get(server.url + _discovery_paths(server.tenant_id)[0]).json()["jwks_uri"])


def test_jwks_caching_headers_and_conditional_get(server: RunningServer, http: httpx.Client) -> None:
    uri = _jwks_uri(server, http)
    resp = http.get(uri)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    cache = [d.strip() for d in resp.headers["cache-control"].split(",")]
    assert "public" in cache
    max_age = [int(d.split("=", 1)[1]) for d in cache if d.startswith("max-age=")]
    assert len(max_age) == 1 and max_age[0] > 0
    assert resp.headers["access-control-allow-origin"] == "*"
    etag = resp.headers["etag"]
    assert re.fullmatch(r'(W/)?"[^"]+"', etag)
    keys = resp.json()["keys"]
    assert keys and all("d" not in k and "p" not in k for k in keys)  # public parts only

    again = http.get(uri, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["access-control-allow-origin"] == "*"

    other = http.get(uri, headers={"If-None-Match": '"not-the-etag"'})
    assert other.status_code == 200
    assert other.json() == resp.json()


@pytest.mark.parametrize("form", ["weak", "list", "star"])
def test_jwks_if_none_match_per_rfc9110(server: RunningServer, http: httpx.Client, form: str) -> None:
    uri = _jwks_uri(server, http)
    etag = http.get(uri).headers["etag"]
    value = {"weak": f"W/{etag}", "list": f'"something-else", {etag}', "star": "*"}[form]
    assert http.get(uri, headers={"If-None-Match": value}).status_code == 304


def test_jwks_key_verifies_a_fresh_token(server: RunningServer, http: httpx.Client) -> None:
    """Verified with PyJWT directly, independent of keyless.verify."""
    admin = Admin(server)
    try:
        uri = f"api://jwks-{uuid.uuid4().hex[:8]}"
        client, secret = admin.client_with_role(uri, "Data.Read")
    finally:
        admin.api.http.close()
    token = token_request(http, server, secret_post(client["client_id"], secret, f"{uri}/.default"))
    access_token = token.json()["access_token"]
    header = header_of(access_token)
    jwks = http.get(_jwks_uri(server, http)).json()
    matching = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert len(matching) == 1
    jwk = matching[0]
    assert jwk["alg"] == header["alg"] == "RS256"
    assert jwk.get("use", "sig") == "sig"
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(access_token, key, algorithms=["RS256"], audience=uri, issuer=server.issuer,
                        options={"require": ["exp", "iat", "nbf"]})
    assert claims["client_id"] == client["client_id"]
    # A token that was tampered with does not verify against the same key.
    head, payload, sig = access_token.split(".")
    tampered = ".".join([head, payload, sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, key, algorithms=["RS256"], audience=uri, issuer=server.issuer)


def test_health(server: RunningServer, http: httpx.Client) -> None:
    live = http.get(f"{server.url}/healthz")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    ready = http.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    expected = {"store": "ok", "signing_keys": "ok"}
    if server.database_url is not None:  # replicas on PostgreSQL hear each other's changes (docs/deployment.md)
        expected["change_feed"] = "ok"
    assert ready.json()["checks"] == expected


def test_metrics_count_token_requests(server: RunningServer, http: httpx.Client) -> None:
    before = http.get(f"{server.url}/metrics")
    assert before.status_code == 200
    assert "keyless_token_requests_total" in before.text
    failures = _metric(before.text, "keyless_token_requests_total", error="unsupported_grant_type", result="failure")
    resp = token_request(http, server, {"grant_type": "password", "client_id": str(uuid.uuid4())})
    assert resp.status_code == 400
    after = http.get(f"{server.url}/metrics").text
    assert _metric(after, "keyless_token_requests_total", error="unsupported_grant_type",
                   result="failure") == failures + 1
    assert "# TYPE keyless_token_requests_total counter" in after
