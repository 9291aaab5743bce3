"""The authorization matrix (issue 20): every operation of the management API's OpenAPI document, called
by every kind of caller against a real server on SQLite, with the exact answer its declared access
(`x-keyless-role`) demands — and one audit record per successful write, none per refused one.

Callers: no token; a valid token for another audience; a token signed by a key the server never had
(naming the server's own `kid` and issuer); the admin's token re-signed by the real key but expired;
the admin's token on a path naming another tenant; an
application token for the management API with no management role; Keyless.Reader; Keyless.Admin. Tenants cannot
yet be created beside the first one, so "admin of another tenant" is the other-tenant path.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from keyless.directory.bootstrap import ADMIN_ROLE, MANAGEMENT_URI, READER_ROLE
from tests.conftest import SHARED_ENV
from tests.integration.server.conftest import client_for
from tests.support.matrix import WEBHOOK_ENV, Prepared, Recipes, expired_copy, forged_token, strings, token_for
from tests.support.server import Admin, RunningServer, start_server, stop_server

UNAUTHENTICATED = {"type": "urn:keyless:problem:unauthenticated", "title": "Unauthorized", "status": 401,
                   "detail": "a bearer token is required", "code": "unauthenticated"}
INVALID_TOKEN = {"type": "urn:keyless:problem:invalid_token", "title": "Unauthorized", "status": 401,
                 "detail": "the bearer token is invalid", "code": "invalid_token"}
FORBIDDEN = {"type": "urn:keyless:problem:forbidden", "title": "Forbidden", "status": 403,
             "detail": "the caller lacks the role this operation needs", "code": "forbidden"}
NO_ROLE = "Matrix.Unrelated"
NOT_WRITES = {("post", "/{tenant}/manage/v1/applications/{client_id}/federated-credentials/test"),
              ("post", "/{tenant}/manage/v1/identities/{ref}/federated-credentials/test"),
              ("post", "/{tenant}/manage/v1/policy/test"),
              ("post", "/{tenant}/manage/v1/leaks/lookup"),  # a read with the secrets in the body, not the URL
              ("post", "/{tenant}/manage/v1/console/login-codes")}  # a sealed code: nothing stored, nothing audited


@dataclass
class World:
    server: RunningServer
    http: httpx.Client
    admin: Admin
    doc: dict[str, Any]
    tokens: dict[str, str | None]
    admin_client_id: str
    admin_credential_id: str  # the id of the client secret the admin caller signed in with
    secrets: list[str]
    recipes: Recipes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = start_server(Path(tmp_path_factory.mktemp("matrix")), env={**SHARED_ENV, **WEBHOOK_ENV})
    try:
        with client_for(server) as http, Admin(server) as admin:
            doc = http.get(f"{server.url}/manage/openapi.json").json()
            # A management API role that is neither Reader nor Admin: a token for the API carrying no
            # role the API knows (an application with no role at all gets no token: invalid_scope).
            management = admin.api.call("GET", f"/applications?ref={MANAGEMENT_URI}")[0]["client_id"]
            admin.api.call("POST", f"/applications/{management}/roles", json_body={"value": NO_ROLE})
            callers: dict[str, tuple[str, str]] = {}
            secret_ids: dict[str, str] = {}
            for name, role in (("admin", ADMIN_ROLE), ("reader", READER_ROLE), ("no_role", NO_ROLE)):
                app = admin.app(f"matrix-{name}-{uuid.uuid4().hex[:6]}")
                admin.secret(app["client_id"])  # a second credential, unused: the record must name the right one
                made = admin.secret(app["client_id"])
                admin.grant(app["client_id"], MANAGEMENT_URI, role)
                callers[name] = (app["client_id"], made["secret"])
                secret_ids[name] = made["id"]
            other_uri = f"api://matrix-other-{uuid.uuid4().hex[:6]}"
            client, other_secret = admin.client_with_role(other_uri)
            tokens: dict[str, str | None] = {
                name: token_for(http, server, cid, secret, MANAGEMENT_URI) for name, (cid, secret) in callers.items()
            }
            tokens["anonymous"] = None
            tokens["other_audience"] = token_for(http, server, client["client_id"], other_secret, other_uri)
            kid = json.loads(_b64(str(tokens["admin"]).split(".")[0]))["kid"]
            tokens["unknown_key"] = forged_token(kid, server.issuer, MANAGEMENT_URI, [ADMIN_ROLE])
            tokens["expired"] = expired_copy(server, str(tokens["admin"]))
            # The same copy, still valid, is accepted: the expired one is refused for its `exp` alone.
            fresh = expired_copy(server, str(tokens["admin"]), ended_ago=-600)
            assert http.get(f"{server.url}/{server.tenant_id}/manage/v1/tenant",
                            headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
            secrets = [s for _, s in callers.values()] + [other_secret]
            recipes = Recipes(server, admin, doc, callers["admin"][0])
            yield World(server, http, admin, doc, tokens, callers["admin"][0], secret_ids["admin"], secrets, recipes)
    finally:
        stop_server(server)


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _operations() -> list[tuple[str, str]]:
    from keyless.server.manage.api import create_management_app

    doc = create_management_app().openapi()
    return [(method, path) for path, item in doc["paths"].items() for method in item]


def _send(world: World, method: str, path: str, prepared: Prepared, token: str | None,
          tenant: str | None = None) -> httpx.Response:
    params = {**prepared.path, **({"tenant": tenant} if tenant else {})}
    url = world.server.url + path.format(**params)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return world.http.request(method.upper(), url, params=prepared.query, json=prepared.body, headers=headers)


def _audit_since(world: World, since: float) -> list[dict[str, Any]]:
    records = world.admin.api.call("GET", f"/logs/audit?since={since}&limit=1000")
    return [r for r in records if r["time"] >= since]


def _problem(resp: httpx.Response, expected: dict[str, Any], what: str) -> None:
    assert (resp.status_code, resp.json()) == (expected["status"], expected), what
    assert resp.headers["content-type"] == "application/problem+json", what
    assert resp.headers["www-authenticate"].startswith('Bearer realm="keyless"'), what


def _check_documented(world: World, method: str, path: str, resp: httpx.Response, what: str) -> None:
    """The answer is one the document lists for the operation, with the content type it lists."""
    responses = world.doc["paths"][path][method]["responses"]
    assert str(resp.status_code) in responses, f"{what}: {resp.status_code} is not documented"
    content = responses[str(resp.status_code)].get("content")
    if content is None:
        assert not resp.content, what
        return
    media = resp.headers["content-type"].split(";")[0]
    assert media in content, what
    # The body matches the documented schema (OpenAPI 3.1 schemas are JSON Schema 2020-12).
    schema = {**content[media]["schema"], "components": world.doc["components"]}
    errors = list(Draft202012Validator(schema).iter_errors(resp.json()))
    assert not errors, f"{what}: the body does not match the document: {errors[0].message}"


def _expected_refusal(world: World, method: str, path: str, requirement: str, caller: str) -> dict[str, Any] | None:
    """The exact problem a caller gets, or None if the declaration admits it."""
    if caller == "anonymous":
        return UNAUTHENTICATED
    if caller in ("other_audience", "unknown_key", "expired"):
        return INVALID_TOKEN
    if caller == "no_role":
        return FORBIDDEN
    if caller == "reader" and requirement == ADMIN_ROLE:
        return FORBIDDEN
    return None


@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation_answers_every_caller_as_declared(world: World, method: str, path: str) -> None:
    operation = world.doc["paths"][path][method]
    requirement = operation["x-keyless-role"]
    what = f"{method.upper()} {path}"
    prepared = world.recipes.prepare(method, path)
    since = time.time()
    time.sleep(0.002)
    before = _audit_since(world, since)

    for caller in ("anonymous", "other_audience", "unknown_key", "expired", "no_role", "reader"):
        expected = _expected_refusal(world, method, path, requirement, caller)
        resp = _send(world, method, path, prepared, world.tokens[caller])
        _check_documented(world, method, path, resp, f"{what} as {caller}")
        if expected is not None:
            _problem(resp, expected, f"{what} as {caller}")
        elif requirement == "vault-grant":
            # The reader holds no grant in the vault: a named secret does not exist for it (G04),
            # anything else is refused.
            assert resp.status_code in (403, 404), f"{what} as reader: {resp.text}"
            assert resp.json()["code"] in ("vault_forbidden", "secret_not_found"), f"{what}: {resp.text}"
        else:
            assert resp.status_code == int(_success(operation)), f"{what} as {caller}: {resp.text}"
    # The admin's token on a path naming a tenant that does not exist here: as if unauthenticated.
    resp = _send(world, method, path, prepared, world.tokens["admin"], tenant=str(uuid.uuid4()))
    _problem(resp, UNAUTHENTICATED, f"{what} as admin of another tenant")
    assert _audit_since(world, since) == before, f"{what}: a refused call wrote an audit record"

    resp = _send(world, method, path, prepared, world.tokens["admin"])
    assert resp.status_code == int(_success(operation)), f"{what} as admin: {resp.text}"
    _check_documented(world, method, path, resp, f"{what} as admin")
    if method == "get" or (method, path) in NOT_WRITES:
        return
    added = [r for r in _audit_since(world, since) if r not in before]
    assert len(added) == 1, f"{what} wrote {len(added)} audit records: {added}"
    record = added[0]
    assert record["actor"] == world.admin_client_id, what
    # … and names the credential the caller signed in with, by id (issue 20 item 3).
    credential = {k: record["details"].get(k) for k in ("actor_credential_id", "actor_credential_type")}
    assert credential == {"actor_credential_id": world.admin_credential_id, "actor_credential_type": "secret"}, what
    targets = {str(v) for v in prepared.path.values()} | strings(resp.json() if resp.content else None)
    targets |= prepared.targets
    assert record["target_id"] in targets, f"{what}: audit target {record['target_id']!r} names no target"
    shown = json.dumps(record)
    for secret in world.secrets + prepared.secrets + _secret_values(resp, prepared):
        assert secret not in shown, f"{what}: a secret value is in the audit record"


def test_only_management_tokens_name_the_signing_in_credential(world: World) -> None:
    """The credential id travels in management API tokens alone: a resource server (perhaps a third
    party) learns nothing about which of a client's credentials was used."""
    def claims(token: str | None) -> dict[str, Any]:
        return dict(json.loads(_b64(str(token).split(".")[1])))

    assert claims(world.tokens["admin"])["keyless_credential_id"] == world.admin_credential_id
    other = claims(world.tokens["other_audience"])
    assert not {k for k in other if k.startswith("keyless_")}, other


def _success(operation: dict[str, Any]) -> str:
    codes = [s for s in operation["responses"] if s.startswith("2")]
    assert len(codes) == 1, codes
    return codes[0]


def _secret_values(resp: httpx.Response, prepared: Prepared) -> list[str]:
    """Values shown once (client secrets, join tokens) or stored secrets (a vault's values)."""
    keys = ("secret", "join_token") + (("value",) if "/vaults/" in resp.request.url.path else ())
    sent = prepared.body or {}
    body = resp.json() if resp.content else {}
    return [d[k] for d in (body, sent) if isinstance(d, dict) for k in keys if isinstance(d.get(k), str)]


def test_docs_page_loads_every_asset_from_keyless_itself(world: World) -> None:
    """/manage/docs (issue 17): no CDN; the policy forbids any other origin and inline scripts."""
    import re

    page = world.http.get(f"{world.server.url}/manage/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/manage/docs/") for a in assets), assets
    for asset in [*assets, "/manage/docs/LICENSE"]:
        resp = world.http.get(world.server.url + asset)
        assert resp.status_code == 200 and resp.content, asset
        assert resp.headers["x-content-type-options"] == "nosniff", asset
    assert "/manage/openapi.json" in world.http.get(f"{world.server.url}/manage/docs/init.js").text
    assert "Apache License" in world.http.get(f"{world.server.url}/manage/docs/LICENSE").text


def test_docs_asset_outside_the_list_is_not_found_not_a_file_read(world: World) -> None:
    for name in ("..%2F..%2Fpyproject.toml", "index.html", "swagger-ui.js.map"):
        resp = world.http.get(f"{world.server.url}/manage/docs/{name}")
        assert (resp.status_code, resp.json()) == (404, {
            "type": "urn:keyless:problem:not_found", "title": "Not Found", "status": 404,
            "detail": "no such resource", "code": "not_found"}), name


def _owned_children() -> list[tuple[str, str, str]]:
    """(method, path, child parameter) for every operation on an object that belongs to another one
    named before it in the path (a secret of an application, a grant of a vault, ...)."""
    parents = {"client_id", "vault", "identity"}
    out = []
    for method, path in _operations():
        names = [part.strip("{}") for part in path.split("/") if part.startswith("{")]
        if len(names) == 3 and names[1] in parents and method in ("get", "delete", "patch", "post"):
            out.append((method, path, names[2]))
    return out


@pytest.mark.parametrize(("method", "path", "child"), _owned_children())
def test_an_object_named_under_another_owner_is_not_found_and_not_touched(world: World, method: str, path: str,
                                                                           child: str) -> None:
    """404-as-nonexistent: another application's secret, another vault's grant or secret, another
    identity's federated credential, named under this owner, is refused like one that never existed."""
    mine, theirs = world.recipes.prepare(method, path), world.recipes.prepare(method, path)
    mixed = Prepared(path={**mine.path, child: theirs.path[child]}, query=mine.query, body=mine.body)
    since = time.time()
    time.sleep(0.002)
    resp = _send(world, method, path, mixed, world.tokens["admin"])
    assert resp.status_code == 404, f"{method.upper()} {path} with another owner's {child}: {resp.text}"
    assert resp.headers["content-type"] == "application/problem+json"
    _check_documented(world, method, path, resp, f"{method.upper()} {path} (another owner's {child})")
    assert _audit_since(world, since) == []
    # The other owner's object is still there: the same call under its real owner succeeds.
    assert _send(world, method, path, theirs, world.tokens["admin"]).status_code == int(
        _success(world.doc["paths"][path][method]))
