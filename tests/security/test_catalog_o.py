"""Catalog O (second-wave surfaces), the policy rows: O05 a credential made before a policy is judged
by it when used; O06 neither a policy change nor an override that loosens the tenant's rules is open
to a Reader. On each storage backend (docs/policies.md)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from keyless.directory.bootstrap import MANAGEMENT_URI, READER_ROLE
from tests.security.support import SecWorld
from tests.support.certs import AUTH_FAILED, assertion_form, claims_for, manage, new_cert, register, signins
from tests.support.matrix import token_for

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

FORBIDDEN = {"type": "urn:keyless:problem:forbidden", "title": "Forbidden", "status": 403,
             "detail": "the caller lacks the role this operation needs", "code": "forbidden"}


def _granted_client(world: SecWorld) -> str:
    client = world.admin.app(f"o-{uuid.uuid4().hex[:8]}")
    world.admin.grant(client["client_id"], world.resource_uri, "Data.Read")
    return str(client["client_id"])


def _set(world: SecWorld, client_id: str, doc: dict[str, Any]) -> None:
    resp = manage(world.server, world.admin, "PUT", f"/applications/{client_id}/policy", json=doc)
    assert resp.status_code == 200, resp.text


def test_o05_certificate_registered_before_a_key_type_rule_is_refused_at_sign_in(world: SecWorld) -> None:
    cid = _granted_client(world)
    cert = new_cert("rsa2048")
    register(world.server, world.admin, cid, cert)

    def sign_in() -> httpx.Response:
        assertion = cert.sign(claims_for(cid, world.server.token_endpoint), alg="RS256")
        return world.token(assertion_form(assertion, world.scope, client_id=cid))

    assert sign_in().status_code == 200
    _set(world, cid, {"key_types": {"mode": "enforce", "allowed": [{"type": "RSA", "min_size": 3072}]}})
    refused = sign_in()
    assert (refused.status_code, refused.json()) == (401, AUTH_FAILED)  # the wire says no more than any 401
    event = signins(world.server, world.admin, cid, limit=1)[0]
    assert (event["result"], event["detail"], event["credential_type"]) == ("failure", "policy_key_type",
                                                                            "certificate")
    _set(world, cid, {"key_types": {"mode": "audit", "allowed": [{"type": "RSA", "min_size": 3072}]}})
    assert sign_in().status_code == 200
    assert signins(world.server, world.admin, cid, limit=1)[0]["detail"] == "policy_audit:policy_key_type"


def test_o06_a_reader_can_neither_change_a_policy_nor_loosen_an_override(world: SecWorld) -> None:
    reader = world.admin.app(f"o-reader-{uuid.uuid4().hex[:8]}")
    reader_secret = world.admin.secret(reader["client_id"])["secret"]
    world.admin.grant(reader["client_id"], MANAGEMENT_URI, READER_ROLE)
    token = token_for(world.http, world.server, reader["client_id"], reader_secret, MANAGEMENT_URI)
    cid = _granted_client(world)
    _set(world, cid, {"block_secrets": {"mode": "enforce"}})
    base = f"{world.server.url}/{world.server.tenant_id}/manage/v1"
    auth = {"Authorization": f"Bearer {token}"}
    for method, path, body in (("PUT", f"/applications/{cid}/policy", {"block_secrets": {"mode": "off"}}),
                               ("PUT", f"/applications/{cid}/policy", {}),
                               ("PUT", "/policy", {"source_networks": {"mode": "enforce", "networks": ["0.0.0.0/0"]}}),
                               ("PUT", "/policy", {"reaping": {"mode": "enforce", "unused_days": 8}}),
                               ("PUT", f"/applications/{cid}/policy", {"reaping": {"mode": "off"}}),
                               ("POST", "/policy/test", {"policy": {}})):
        resp = world.http.request(method, base + path, json=body, headers=auth)
        assert (resp.status_code, resp.json()) == (403, FORBIDDEN), (method, path)
    # Nothing changed: the override still blocks new secrets, which a Reader may see.
    shown = world.http.get(f"{base}/applications/{cid}/policy", headers=auth)
    assert shown.status_code == 200
    assert shown.json()["override"] == {"block_secrets": {"mode": "enforce", "allowed_apps": []}}
    assert world.http.get(f"{base}/policy", headers=auth).json() == {"policy": {}}
    refused = manage(world.server, world.admin, "POST", f"/applications/{cid}/secrets", json={})
    assert (refused.status_code, refused.json()["code"]) == (400, "policy_secret_blocked")
