"""The audit log's one write path (keyless.store.logrows.audit_row) records the acting credential when
the actor names one — by id and kind, never its value — whoever built the event (issue 20 item 3)."""

from __future__ import annotations

import json

import pytest

from keyless.domain.model import Actor, AuditEvent
from keyless.store import logrows
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


def _fresh(event: AuditEvent) -> dict[str, object]:
    """The row as the sanitiser makes it with nothing remembered."""
    logrows._AUDITS.clear()
    return audit_row(event)


HOSTILE = "\x1b[2J\r\nforged row\u202e"


def _plain(details: dict[str, object], actor: str = "a") -> AuditEvent:
    return AuditEvent(time=3.0, tenant_id="t", actor=actor, action="x", target_type="y", target_id="z",
                      details=details)


EVENTS = [
    _event(Actor("admin-app", "cert-1", "certificate")),
    _event("admin-app"),  # the same client id without its credential: another row
    _event("other-app"),
    AuditEvent(time=2.0, tenant_id="t", actor=HOSTILE, action=HOSTILE, target_type=HOSTILE, target_id=HOSTILE,
               details={HOSTILE: HOSTILE, "n": 1}),
    _plain({"n": 1}),
    _plain({"n": True}),  # equal to 1 as a key, encoded as `true`
    _plain({"n": 1.0}),
    _plain({"n": 1}, actor="b"),
    _plain({"roles": [HOSTILE], "nested": {"k": HOSTILE}}),  # not hashable: never remembered
]


def test_remembered_rows_are_the_rows_the_sanitiser_makes() -> None:
    """Rows are remembered by their raw texts and details (issue 18): every row, however many rows
    of equal-looking values came before it, is exactly what sanitising it afresh gives."""
    expected = [_fresh(event) for event in EVENTS]
    logrows._AUDITS.clear()
    for _ in range(2):
        assert [audit_row(event) for event in EVENTS] == expected
    assert HOSTILE not in str(expected)


def test_ever_new_rows_cost_at_most_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logrows, "SANITISED_MAX", 8)
    for i in range(50):
        audit_row(AuditEvent(time=1.0, tenant_id="t", actor=f"a{i}", action="x", target_type="y", target_id="z"))
        assert len(logrows._AUDITS) <= 8
