"""Events (keyless.domain.events) and the retry schedule (keyless.domain.webhooks)."""

from __future__ import annotations

import itertools

import pytest

from keyless.domain.events import CREDENTIAL_EXPIRING, EVENT_TYPES, Event, EventRefused
from keyless.domain.webhooks import RETRY_SCHEDULE, WebhookEndpoint, retry_delay


def test_every_documented_type_is_known() -> None:
    assert {"credential.expiring", "credential.expired", "credential.unused", "policy.violation",
            "leak.reported", "signing_key.rotated", "agent.silent"} <= EVENT_TYPES


def test_unknown_type_is_refused() -> None:
    with pytest.raises(EventRefused, match="unknown event type"):
        Event("credential.exploded", "t", 0.0, "c")


@pytest.mark.parametrize("key", ["secret", "client_secret", "token", "Client_Assertion", "password", "value"])
def test_an_event_carrying_a_secret_value_is_refused_at_any_depth(key: str) -> None:
    """Catalog O03: payloads carry ids and names, never a secret value, token or assertion."""
    with pytest.raises(EventRefused, match="never carries a secret"):
        Event(CREDENTIAL_EXPIRING, "t", 0.0, "c", {key: "kls_..."})
    with pytest.raises(EventRefused, match="never carries a secret"):
        Event(CREDENTIAL_EXPIRING, "t", 0.0, "c", {"credential": {"id": "c", key: "x"}})


def test_payload_names_the_event_and_each_event_has_its_own_id() -> None:
    a = Event(CREDENTIAL_EXPIRING, "t", 12.5, "cred", {"days": 7})
    b = Event(CREDENTIAL_EXPIRING, "t", 12.5, "cred", {"days": 7})
    assert a.id != b.id and a.id.startswith("msg_")
    assert a.payload() == {"id": a.id, "type": CREDENTIAL_EXPIRING, "timestamp": 12.5, "tenant_id": "t",
                           "subject": "cred", "data": {"days": 7}}


def test_retry_backs_off_and_gives_up() -> None:
    waits = [retry_delay(n, 0.0) or 0.0 for n in range(1, len(RETRY_SCHEDULE) + 1)]
    assert waits == list(RETRY_SCHEDULE)
    assert all(later > earlier for earlier, later in itertools.pairwise(waits))
    assert retry_delay(len(RETRY_SCHEDULE) + 1, 0.0) is None
    assert retry_delay(0, 0.0) is None


def test_retry_jitter_stays_within_a_fifth() -> None:
    assert retry_delay(1, 1.0) == pytest.approx(RETRY_SCHEDULE[0] * 1.2)
    assert retry_delay(1, -1.0) == pytest.approx(RETRY_SCHEDULE[0] * 0.8)
    assert retry_delay(1, 5.0) == pytest.approx(RETRY_SCHEDULE[0] * 1.2)  # clamped


def test_an_endpoint_with_no_types_wants_every_event() -> None:
    every = WebhookEndpoint("e", "t", "https://x/", "", (), 0.0)
    some = WebhookEndpoint("e", "t", "https://x/", "", (CREDENTIAL_EXPIRING,), 0.0)
    assert every.wants("leak.reported") and some.wants(CREDENTIAL_EXPIRING) and not some.wants("leak.reported")
