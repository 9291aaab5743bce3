"""Sender-key signatures of leak reports (GitHub's secret-scanning partner format, catalog O07): the
published test vector verifies, any change to the body or key id does not, and key documents holding
anything but P-256 public keys are refused at load."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keyless.crypto.leak_reports import SenderKeys, SenderKeysInvalid, new_sender_key, sign_report

# The example in GitHub's partner-programme documentation ("derived from a test key").
DOC_KEY_ID = "f9525bf080f75b3506ca1ead061add62b8633a346606dc5fe544e29231c6ee0d"
DOC_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsz9ugWDj5jK5ELBK42ynytbo38gP
HzZFI03Exwz8Lh/tCfL3YxwMdLjB+bMznsanlhK0RwcGP3IDb34kQDIo3Q==
-----END PUBLIC KEY-----
"""
DOC_BODY = b'[{"token":"some_token","type":"some_type","url":"some_url","source":"some_source"}]'
DOC_SIGNATURE = "MEUCIFLZzeK++IhS+y276SRk2Pe5LfDrfvTXu6iwKKcFGCrvAiEAhHN2kDOhy2I6eGkOFmxNkOJ+L2y8oQ9A2T9GGJo6WJY="


def document(*pairs: tuple[str, str]) -> bytes:
    return json.dumps({"public_keys": [{"key_identifier": k, "key": pem, "is_current": True}
                                       for k, pem in pairs]}).encode()


def test_the_documented_example_verifies_and_any_change_does_not() -> None:
    keys = SenderKeys.from_json(document((DOC_KEY_ID, DOC_PUBLIC_KEY)))
    assert keys.verify(DOC_KEY_ID, DOC_SIGNATURE, DOC_BODY)
    assert not keys.verify(DOC_KEY_ID, DOC_SIGNATURE, DOC_BODY + b"\n")
    assert not keys.verify("0" * 64, DOC_SIGNATURE, DOC_BODY)
    assert not keys.verify(DOC_KEY_ID, DOC_SIGNATURE[:-4] + "AAA=", DOC_BODY)
    assert not keys.verify(DOC_KEY_ID, "%%%", DOC_BODY)
    assert not keys.verify(DOC_KEY_ID, "A" * 10_000, DOC_BODY)


def test_generated_sender_key_round_trip_and_rotation_overlap() -> None:
    (old_priv, old_pub), (new_priv, new_pub) = new_sender_key(), new_sender_key()
    both = SenderKeys.from_json(document(("old", old_pub), ("new", new_pub)))
    body = b'[{"token":"x","type":"t","url":"","source":"content"}]'
    assert both.verify("old", sign_report(old_priv, body), body)
    assert both.verify("new", sign_report(new_priv, body), body)
    assert not both.verify("new", sign_report(old_priv, body), body)  # a key id names exactly one key


def test_non_p256_keys_and_malformed_documents_are_refused() -> None:
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    p384_pub = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    for bad in (document(("r", rsa_pub)), document(("p", p384_pub)), b"{}", b"[]", b"not json",
                json.dumps({"public_keys": [{"key_identifier": 1, "key": "x"}]}).encode(),
                document(("k", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))):
        with pytest.raises(SenderKeysInvalid):
            SenderKeys.from_json(bad)
