"""The audit log's one write path (keyless.store.logrows.audit_row) records the acting credential when
the actor names one — by id and kind, never its value — whoever built the event (issue 20 item 3)."""

from __future__ import annotations

import json

from keyless.domain.model import Actor, AuditEvent
from keyless.store.logrows import audit_row


def _event(actor: str) -> AuditEvent:
    return AuditEvent(time=1.0, tenant_id="t", actor=actor, action="secret.add", target_type="application",
                      target_id="app", details={"secret_id": "s2"})


def test_the_record_names_the_credential_the_actor_signed_in_with() -> None:
    row = audit_row(_event(Actor("admin-app", "cert-1", "certificate")))
    assert row["actor"] == "admin-app"
    assert json.loads(row["details"]) == {"secret_id": "s2", "actor_credential_id": "cert-1",
                                          "actor_credential_type": "certificate"}


def test_an_actor_without_a_credential_adds_nothing() -> None:
    for actor in ("keyless-init", Actor("admin-app")):
        assert json.loads(audit_row(_event(actor))["details"]) == {"secret_id": "s2"}


def test_an_actor_compares_as_its_client_id() -> None:
    """Use cases compare the actor with a client id (nobody revokes their own last credential)."""
    assert Actor("admin-app", "cert-1", "certificate") == "admin-app"
