"""Standard Webhooks signatures (keyless.crypto.webhooks), checked with the `standardwebhooks` library
exactly as a receiver would (catalog O03, O04)."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from keyless.crypto import webhooks as signing


def test_a_receiver_verifies_our_signature_with_the_secret_shown_once() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(signing.key_of(secret)) == 32
    body, now = b'{"type":"credential.expiring","data":{"days":7}}', int(time.time())
    headers = signing.headers(signing.key_of(secret), "msg_1", now, body)
    assert Webhook(secret).verify(body, headers) == {"type": "credential.expiring", "data": {"days": 7}}


@pytest.mark.parametrize("tamper", ["body", "id", "timestamp", "secret"])
def test_any_change_to_a_signed_delivery_fails_verification(tamper: str) -> None:
    """The signature covers the id and the timestamp too, so a replay cannot be re-dated or re-labelled."""
    secret, body, now = signing.new_secret(), b'{"a":1}', int(time.time())
    headers = signing.headers(signing.key_of(secret), "msg_1", now, body)
    if tamper == "body":
        body = b'{"a":2}'
    elif tamper == "id":
        headers["webhook-id"] = "msg_2"
    elif tamper == "timestamp":
        headers["webhook-timestamp"] = str(now - 1)
    else:
        secret = signing.new_secret()
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_an_old_delivery_is_refused_by_the_receiver() -> None:
    """Catalog O04: a receiver rejects timestamps outside its tolerance (the library's: 5 minutes)."""
    secret, body = signing.new_secret(), b"{}"
    old = int(time.time()) - 3600
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, signing.headers(signing.key_of(secret), "msg_1", old, body))
