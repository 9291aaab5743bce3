"""Bad Unicode in a JSON body is a 400 on every API, never a 500 or a dropped connection (issue 11
item 8, docs/security.md "Bad Unicode is a 400"): a lone surrogate escaped (`"\\ud800"`), the same as
raw UTF-8-encoded surrogate bytes, a lone low surrogate, and bytes that are not UTF-8 at all. The
management API answers problem+json, the vault port Key Vault's error JSON, the server's agent
routes an RFC 6749-style error. A refused write changes nothing."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.server import Admin, RunningServer
from tests.support.vault import VaultHttp, new_user, new_vault, vault_token

PROBLEM = "application/problem+json"
# body -> where the decoder stops (the character offset FastAPI reports in `loc`)
BAD_BODIES = {
    "escaped_lone_high_surrogate": (b'{"value": "a\\ud800b"}', 12),
    "escaped_lone_low_surrogate": (b'{"value": "\\udc00"}', 11),
    "escaped_reversed_pair": (b'{"value": "\\udc00\\ud800"}', 11),
    "raw_surrogate_bytes": (b'{"value": "a\xed\xa0\x80b"}', 0),
    "invalid_utf8_byte": (b'{"value": "a\xffb"}', 0),
    "overlong_utf8": (b'{"value": "\xc0\xaf"}', 0),
}
JSON = {"Content-Type": "application/json"}


def problem(position: int) -> dict[str, object]:
    return {"type": "urn:keyless:problem:validation_failed", "title": "Invalid request", "status": 400,
            "detail": "the request body or query is invalid", "code": "validation_failed",
            "errors": [{"loc": ["body", str(position)], "msg": "JSON decode error"}]}


@dataclass
class Setup:
    base: str
    auth: dict[str, str]
    vault: str
    vault_token: str


@pytest.fixture(scope="module")
def setup(server: RunningServer) -> Iterator[Setup]:
    with Admin(server) as admin:
        vault = new_vault(admin)
        user = new_user(admin, vault)
        yield Setup(f"{server.url}/{server.tenant_id}/manage/v1", {"Authorization": f"Bearer {admin.api.token()}"},
                    vault, vault_token(server, user))


def _http(server: RunningServer) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=10)


@pytest.mark.parametrize(("body", "position"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_unicode_in_a_management_vault_secret_put_is_400_not_500(server: RunningServer, setup: Setup,
                                                                        body: bytes, position: int) -> None:
    url = f"{setup.base}/vaults/{setup.vault}/secrets/bad-unicode"
    with _http(server) as http:
        resp = http.put(url, content=body, headers={**setup.auth, **JSON})
        assert (resp.status_code, resp.headers["content-type"], resp.json()) == (400, PROBLEM, problem(position))
        assert http.get(url, headers=setup.auth).status_code == 404  # nothing was stored


@pytest.mark.parametrize(("body", "position"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_unicode_in_a_management_create_is_400_not_500(server: RunningServer, setup: Setup, body: bytes,
                                                          position: int) -> None:
    with _http(server) as http:
        before = http.get(f"{setup.base}/applications", headers=setup.auth).json()
        resp = http.post(f"{setup.base}/applications", content=body, headers={**setup.auth, **JSON})
        assert (resp.status_code, resp.headers["content-type"], resp.json()) == (400, PROBLEM, problem(position))
        assert http.get(f"{setup.base}/applications", headers=setup.auth).json() == before


@pytest.mark.parametrize(("body", "position"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_unicode_in_a_vault_port_secret_put_is_a_key_vault_400(server: RunningServer, setup: Setup,
                                                                   body: bytes, position: int) -> None:
    with VaultHttp(server, setup.vault, setup.vault_token) as kv:
        resp = kv.http.put(f"https://127.0.0.1:{server.vault_port}/secrets/bad-unicode?api-version=7.6",
                           content=body, headers={"Host": kv.host, "Authorization": f"Bearer {kv.token}",
                                                  **JSON},
                           extensions={"sni_hostname": kv.host.rsplit(":", 1)[0]})
        assert resp.status_code == 400
        assert resp.json() == {"error": {"code": "BadParameter", "message": "the body is not JSON"}}
        assert kv.request("GET", "/secrets/bad-unicode").status_code == 404


@pytest.mark.parametrize(("body", "position"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_unicode_in_an_agent_enrollment_is_400(server: RunningServer, body: bytes, position: int) -> None:
    with _http(server) as http:
        resp = http.post(f"{server.url}/{server.tenant_id}/agent/v1/enroll", content=body, headers=JSON)
        assert resp.status_code == 400
        assert resp.json() == {"error": "invalid_request", "error_description": "the body is not JSON"}
