"""Webhook signatures per the Standard Webhooks specification (catalog O03, O04).

A receiver checks `webhook-signature` = `v1,` + base64(HMAC-SHA256(key, id + "." + timestamp + "." +
body)) with any off-the-shelf Standard Webhooks library; the key is the base64 part of the endpoint's
`whsec_…` secret, shown once at registration. The signature covers the id and the timestamp, so a
receiver that refuses old timestamps and seen ids (docs/notifications.md) cannot be replayed to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

PREFIX = "whsec_"
KEY_BYTES = 32


def new_secret() -> str:
    """A fresh endpoint secret, `whsec_` + base64 of 256 random bits."""
    return PREFIX + base64.b64encode(os.urandom(KEY_BYTES)).decode()


def key_of(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX), validate=True)


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a delivery."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(key, msg_id, timestamp, body)}
