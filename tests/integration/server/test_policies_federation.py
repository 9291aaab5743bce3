"""Credential policies and federated credentials at sign-in, on each backend (docs/policies.md, catalog
O05): a federated credential added before an issuer allow-list or a federated token-lifetime cap is
refused once the rule is enforced, and only noted in audit mode."""

from __future__ import annotations

from typing import Any

from tests.support.certs import AUTH_FAILED, manage, signins
from tests.support.issuer import ExternalIssuer, exchange, federated_app
from tests.support.server import Admin, RunningServer

SUBJECT = "repo:octo/orders:ref:refs/heads/main"


def _set(server: RunningServer, admin: Admin, client_id: str, doc: dict[str, Any]) -> None:
    resp = manage(server, admin, "PUT", f"/applications/{client_id}/policy", json=doc)
    assert resp.status_code == 200, resp.text


def test_o05_federated_credential_made_before_the_rule_is_judged_at_sign_in(
        fed_server: RunningServer, issuer: ExternalIssuer) -> None:
    with Admin(fed_server) as admin:
        app = federated_app(admin, issuer.issuer, SUBJECT)
        assert exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope).status_code == 200
        cases = (({"federation": {"mode": "enforce", "issuers": ["https://token.actions.githubusercontent.com"]}},
                  "policy_issuer_not_allowed"),
                 ({"federation": {"mode": "enforce", "max_token_lifetime": 600}}, "policy_federated_lifetime"))
        for doc, reason in cases:
            _set(fed_server, admin, app.client_id, doc)
            refused = exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope)
            assert (refused.status_code, refused.json()) == (401, AUTH_FAILED), reason
            event = signins(fed_server, admin, app.client_id, limit=1)[0]
            assert (event["result"], event["detail"], event["credential_type"]) == ("failure", reason, "federated")
        _set(fed_server, admin, app.client_id,
             {"federation": {"mode": "audit", "issuers": ["https://token.actions.githubusercontent.com"]}})
        assert exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope).status_code == 200
        assert signins(fed_server, admin, app.client_id, limit=1)[0]["detail"] == (
            "policy_audit:policy_issuer_not_allowed")
        # The allow-list naming this issuer lets it through again.
        _set(fed_server, admin, app.client_id, {"federation": {"mode": "enforce", "issuers": [issuer.issuer]}})
        assert exchange(fed_server, app.client_id, issuer.token(SUBJECT), app.scope).status_code == 200
