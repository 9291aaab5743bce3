"""Envelope encryption: each layer is bound to exactly what it protects (requirements §4.3)."""

from __future__ import annotations

import base64

import pytest

from keyless.crypto import aead
from keyless.vault import envelope
from keyless.vault.errors import BadParameter, Unreadable

IDS = {"tenant_id": "t1", "vault_id": "v1", "name_key": "db", "version": "a" * 32}


def test_value_round_trip_and_no_plaintext_in_blobs() -> None:
    key = aead.new_key()
    wrapped, ciphertext = envelope.seal_value(key, b"hunter2-hunter2", **IDS)
    assert b"hunter2" not in wrapped + ciphertext
    assert envelope.open_value(key, wrapped, ciphertext, **IDS) == b"hunter2-hunter2"


@pytest.mark.parametrize("field", ["tenant_id", "vault_id", "name_key", "version"])
def test_a_blob_moved_to_another_record_does_not_open(field: str) -> None:
    key = aead.new_key()
    wrapped, ciphertext = envelope.seal_value(key, b"v", **IDS)
    with pytest.raises(Unreadable):
        envelope.open_value(key, wrapped, ciphertext, **{**IDS, field: IDS[field] + "x"})


def test_each_version_has_its_own_data_key() -> None:
    key = aead.new_key()
    one = envelope.seal_value(key, b"v", **IDS)
    two = envelope.seal_value(key, b"v", **IDS)
    assert one[0] != two[0] and one[1] != two[1]


def test_rewrap_moves_the_data_key_and_leaves_the_value_untouched() -> None:
    old, new = aead.new_key(), aead.new_key()
    wrapped, ciphertext = envelope.seal_value(old, b"v", **IDS)
    rewrapped = envelope.rewrap(old, new, wrapped, **IDS)
    assert envelope.open_value(new, rewrapped, ciphertext, **IDS) == b"v"
    with pytest.raises(Unreadable):
        envelope.open_value(old, rewrapped, ciphertext, **IDS)


def test_vault_keys_are_sealed_under_the_server_kek_and_bound_to_their_vault() -> None:
    kek = aead.new_key()
    sealed = envelope.new_vault_key(kek, "t", "v", "k")
    assert len(envelope.open_vault_key(kek, sealed, "t", "v", "k")) == 32
    with pytest.raises(Unreadable):
        envelope.open_vault_key(kek, sealed, "t", "other", "k")
    with pytest.raises(Unreadable):
        envelope.open_vault_key(aead.new_key(), sealed, "t", "v", "k")


def test_backups_open_only_in_their_tenant_and_installation() -> None:
    kek = aead.new_key()
    blob = envelope.seal_backup(kek, "tenant-a", b'{"x": 1}')
    assert b'"x"' not in base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))  # encrypted, not encoded
    assert envelope.open_backup(kek, "tenant-a", blob) == b'{"x": 1}'
    with pytest.raises(BadParameter):
        envelope.open_backup(kek, "tenant-b", blob)
    with pytest.raises(BadParameter):
        envelope.open_backup(aead.new_key(), "tenant-a", blob)
    tampered = blob[:-4] + ("AAAA" if not blob.endswith("AAAA") else "BBBB")
    with pytest.raises(BadParameter):
        envelope.open_backup(kek, "tenant-a", tampered)
    with pytest.raises(BadParameter):
        envelope.open_backup(kek, "tenant-a", "not base64 !!")
