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


# -- DataKeys: the read path's memo of unwrapped data keys -----------------------------------------------

def test_data_keys_open_what_open_value_opens_and_refuse_what_it_refuses() -> None:
    key = aead.new_key()
    wrapped, ciphertext = envelope.seal_value(key, b"hunter2", **IDS)
    memo = envelope.DataKeys(8)
    assert memo.open_value(key, wrapped, ciphertext, **IDS) == b"hunter2"
    assert memo.open_value(key, wrapped, ciphertext, **IDS) == b"hunter2"  # from the memo
    tampered = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    with pytest.raises(Unreadable):  # the value is still authenticated on a memo hit
        memo.open_value(key, wrapped, tampered, **IDS)
    for field in IDS:  # a blob moved to another record: another memo key, opened afresh, refused
        with pytest.raises(Unreadable):
            memo.open_value(key, wrapped, ciphertext, **{**IDS, field: IDS[field] + "x"})
    with pytest.raises(Unreadable):  # the right wrapped key under another vault key
        memo.open_value(aead.new_key(), wrapped, ciphertext, **IDS)


def test_data_keys_follow_a_new_data_key_under_the_same_version_id() -> None:
    """A restore may bring back a version id with a new data key: the memo is keyed by the wrapped key
    itself, so it can never answer with the old one."""
    key = aead.new_key()
    memo = envelope.DataKeys(8)
    first = envelope.seal_value(key, b"before", **IDS)
    assert memo.open_value(key, *first, **IDS) == b"before"
    second = envelope.seal_value(key, b"after", **IDS)
    assert memo.open_value(key, *second, **IDS) == b"after"
    new_key = aead.new_key()
    rewrapped = envelope.rewrap(key, new_key, second[0], **IDS)
    assert memo.open_value(new_key, rewrapped, second[1], **IDS) == b"after"


def test_data_keys_stay_bounded_and_show_no_key() -> None:
    key = aead.new_key()
    memo = envelope.DataKeys(4)
    sealed = [envelope.seal_value(key, b"v%d" % i, **IDS) for i in range(10)]
    for wrapped, ciphertext in sealed:
        memo.open_value(key, wrapped, ciphertext, **IDS)
    assert repr(memo) == "DataKeys(4 of 4)"
    memo.clear()
    assert repr(memo) == "DataKeys(0 of 4)"
