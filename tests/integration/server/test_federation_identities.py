"""Federated credentials on user-assigned managed identities: a workload outside any host, holding a
token from a real external issuer on loopback, signs in as the identity; on SQLite and PostgreSQL.

Credentials of an identity are kept under owner kind "identity" and those of an application under
"application"; the verifier picks the kind from the client that signs in, so neither is ever
consulted for the other."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from keyless.cli.common import CliError
from tests.security.support import jwt_claims
from tests.support.issuer import ExternalIssuer, exchange, federated_app
from tests.support.server import Admin, RunningServer

SUBJECT = "system:serviceaccount:prod:billing"


@pytest.fixture
def admin(fed_server: RunningServer) -> Any:
    with Admin(fed_server) as a:
        yield a


def _problem(admin: Admin, method: str, path: str, body: Any = None) -> str:
    with pytest.raises(CliError) as err:
        admin.api.call(method, path, json_body=body)
    return str(err.value)


def _identity_with_role(admin: Admin) -> tuple[dict[str, Any], str]:
    """A user-assigned identity granted Data.Read on a new resource: (identity, scope)."""
    resource = f"api://fed-mi-res-{uuid.uuid4().hex[:8]}"
    admin.app(f"fed-mi-res-{uuid.uuid4().hex[:6]}", identifier_uri=resource, roles=("Data.Read",))
    identity = dict(admin.api.call("POST", "/identities", json_body={"name": f"fed-mi-{uuid.uuid4().hex[:6]}"}))
    admin.grant(identity["client_id"], resource, "Data.Read")
    return identity, f"{resource}/.default"


def _add(admin: Admin, ref: str, issuer: str, subject: str, **options: Any) -> dict[str, Any]:
    body = {"name": f"fc-{uuid.uuid4().hex[:8]}", "issuer": issuer, "subject": subject, **options}
    return dict(admin.api.call("POST", f"/identities/{ref}/federated-credentials", json_body=body))


def test_identity_token_from_an_external_token(fed_server: RunningServer, admin: Admin,
                                               issuer: ExternalIssuer) -> None:
    identity, scope = _identity_with_role(admin)
    credential = _add(admin, identity["name"], issuer.issuer, SUBJECT)
    assert (credential["owner_type"], credential["owner_id"]) == ("identity", identity["client_id"])
    assert credential["client_id"] == identity["client_id"]
    resp = exchange(fed_server, identity["client_id"], issuer.token(SUBJECT), scope)
    assert resp.status_code == 200, resp.text
    claims = jwt_claims(resp.json()["access_token"])
    assert claims["xms_mirid"] == identity["resource_id"]
    assert claims["sub"] == claims["oid"] == identity["object_id"]
    assert claims["appid"] == identity["client_id"]
    assert claims["azpacr"] == "2"
    assert claims["roles"] == ["Data.Read"]
    event = admin.api.call("GET", "/logs/signins", params={"client_id": identity["client_id"], "result": "success"})[0]
    assert (event["credential_type"], event["credential_id"]) == ("federated", credential["id"])
    audit = admin.api.call("GET", "/logs/audit", params={"action": "federated_credential.add"})
    entry = next(a for a in audit if a["details"].get("credential_id") == credential["id"])
    assert (entry["target_type"], entry["target_id"]) == ("identity", identity["client_id"])
    # every reference to the identity names the same owner (a resource id, with its slashes, is for ?ref=)
    for ref in (identity["client_id"], identity["object_id"]):
        listed = admin.api.call("GET", f"/identities/{ref}/federated-credentials")
        assert [c["id"] for c in listed] == [credential["id"]]
    report = admin.api.call("POST", f"/identities/{identity['name']}/federated-credentials/test",
                            json_body={"token": issuer.token(SUBJECT)})
    assert (report["result"], report["matched"]) == ("match", credential["name"])


def test_application_and_identity_credentials_never_cross(fed_server: RunningServer, admin: Admin,
                                                          issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, "system:serviceaccount:prod:orders")
    identity, scope = _identity_with_role(admin)
    _add(admin, identity["client_id"], issuer.issuer, SUBJECT)
    # the application's token for the identity, and the identity's token for the application
    as_identity = exchange(fed_server, identity["client_id"], issuer.token("system:serviceaccount:prod:orders"),
                           scope)
    as_app = exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope)
    for resp in (as_identity, as_app):
        assert resp.status_code == 401, resp.text
        assert resp.json()["error_description"] == (
            "the token's subject matches no federated credential for its issuer")
    # each route takes only its own kind: no credential of kind "application" on an identity
    assert "managed_identity" in _problem(admin, "POST", f"/applications/{identity['client_id']}/"
                                          "federated-credentials",
                                          {"name": "x", "issuer": issuer.issuer, "subject": SUBJECT})
    assert "identity_not_found" in _problem(admin, "GET", f"/identities/{app.client_id}/federated-credentials")
    assert exchange(fed_server, app.client_id, issuer.token("system:serviceaccount:prod:orders"),
                    app.scope).status_code == 200


def test_removing_the_identity_or_the_credential_stops_the_exchange(fed_server: RunningServer, admin: Admin,
                                                                    issuer: ExternalIssuer) -> None:
    identity, scope = _identity_with_role(admin)
    kept = _add(admin, identity["name"], issuer.issuer, SUBJECT)
    other = _add(admin, identity["name"], issuer.issuer, "system:serviceaccount:prod:batch")
    token = issuer.token("system:serviceaccount:prod:batch")
    assert exchange(fed_server, identity["client_id"], token, scope).status_code == 200
    admin.api.call("DELETE", f"/identities/{identity['name']}/federated-credentials/{other['name']}")
    assert exchange(fed_server, identity["client_id"], token, scope).status_code == 401
    assert exchange(fed_server, identity["client_id"], issuer.token(SUBJECT), scope).status_code == 200
    admin.api.call("DELETE", f"/identities/{identity['name']}")
    gone = exchange(fed_server, identity["client_id"], issuer.token(SUBJECT), scope)
    assert gone.status_code == 401
    assert gone.json()["error_description"] == (
        "the token's issuer is not trusted by any federated credential of this client")
    # the credential went with the identity
    assert all(c["credential_id"] != kept["id"] for c in admin.api.call("GET", "/federated-credentials/lint"))
    assert "identity_not_found" in _problem(admin, "GET", f"/identities/{identity['client_id']}/"
                                            "federated-credentials")


def test_identity_limits_and_refusals(admin: Admin, issuer: ExternalIssuer) -> None:
    identity, _ = _identity_with_role(admin)
    for i in range(20):
        _add(admin, identity["name"], issuer.issuer, f"repo:acme/api:ref:refs/heads/b{i}")
    assert "too_many_federated_credentials" in _problem(
        admin, "POST", f"/identities/{identity['name']}/federated-credentials",
        {"name": "one-more", "issuer": issuer.issuer, "subject": "repo:acme/api:ref:refs/heads/x"})
    host = admin.api.call("POST", "/hosts", json_body={"name": f"fed-host-{uuid.uuid4().hex[:6]}"})
    assert "system_assigned" in _problem(
        admin, "POST", f"/identities/{host['system_identity']['client_id']}/federated-credentials",
        {"name": "x", "issuer": issuer.issuer, "subject": SUBJECT})
    assert "identity_not_found" in _problem(admin, "POST", "/identities/no-such-identity/federated-credentials",
                                            {"name": "x", "issuer": issuer.issuer, "subject": SUBJECT})
    # outbound audiences: both kinds of identity, each under its own route
    system_id = host["system_identity"]["client_id"]
    allowed = admin.api.call("POST", f"/identities/{system_id}/identity-token-audiences",
                             json_body={"audience": "api://KeylessTokenExchange"})
    assert allowed == ["api://KeylessTokenExchange"]
    assert "managed_identity" in _problem(admin, "GET", f"/applications/{system_id}/identity-token-audiences")
    app = admin.app(f"fed-app-{uuid.uuid4().hex[:6]}")
    assert "identity_not_found" in _problem(admin, "GET", f"/identities/{app['client_id']}/identity-token-audiences")
    findings = admin.api.call("GET", "/federated-credentials/lint", params={"identity": identity["name"]})
    assert {f["client_id"] for f in findings} <= {identity["client_id"]}
    admin.api.call("DELETE", f"/hosts/{host['id']}")


def test_lint_names_the_owner_kind(admin: Admin, issuer: ExternalIssuer) -> None:
    identity, _ = _identity_with_role(admin)
    wide = _add(admin, identity["name"], issuer.issuer, "repo:acme/*", subject_is_pattern=True)
    findings = admin.api.call("GET", "/federated-credentials/lint", params={"identity": identity["client_id"]})
    mine = [f for f in findings if f["credential_id"] == wide["id"]]
    assert mine and all(f["owner_type"] == "identity" and f["client_id"] == identity["client_id"] for f in mine)
    assert any(f["severity"] == "error" for f in mine)
    everything = admin.api.call("GET", "/federated-credentials/lint")
    assert any(f["credential_id"] == wide["id"] and f["owner_type"] == "identity" for f in everything)
