"""AES-256-GCM sealing of secrets at rest, and HKDF purpose keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyless.crypto.aead import KEY_BYTES, DecryptionFailed, derive, new_key, open_sealed, seal
from keyless.errors import KeylessError

KEY = bytes(range(32))
AAD = b"signing-key:abc"
OVERHEAD = 1 + 12 + 16


def test_roundtrip() -> None:
    blob = seal(KEY, b"secret material", AAD)
    assert open_sealed(KEY, blob, AAD) == b"secret material"


def test_roundtrip_empty_plaintext_and_aad() -> None:
    blob = seal(KEY, b"", b"")
    assert len(blob) == OVERHEAD
    assert open_sealed(KEY, blob, b"") == b""


@settings(max_examples=50)
@given(plaintext=st.binary(max_size=512), aad=st.binary(max_size=64))
def test_roundtrip_property(plaintext: bytes, aad: bytes) -> None:
    blob = seal(KEY, plaintext, aad)
    assert len(blob) == len(plaintext) + OVERHEAD
    assert blob[:1] == b"\x01"
    assert open_sealed(KEY, blob, aad) == plaintext


def test_ciphertext_hides_plaintext() -> None:
    plaintext = b"A" * 64
    blob = seal(KEY, plaintext, AAD)
    assert plaintext not in blob


def test_nonces_are_fresh() -> None:
    blobs = {seal(KEY, b"same", AAD) for _ in range(100)}
    assert len(blobs) == 100
    assert len({b[1:13] for b in blobs}) == 100


def test_wrong_aad_fails() -> None:
    blob = seal(KEY, b"x", b"signing-key:one")
    with pytest.raises(DecryptionFailed):
        open_sealed(KEY, blob, b"signing-key:two")
    with pytest.raises(DecryptionFailed):
        open_sealed(KEY, blob, b"")


def test_wrong_key_fails() -> None:
    blob = seal(KEY, b"x", AAD)
    with pytest.raises(DecryptionFailed):
        open_sealed(new_key(), blob, AAD)
    with pytest.raises(DecryptionFailed):
        open_sealed(bytes(32), blob, AAD)


def test_every_tampered_byte_fails() -> None:
    blob = seal(KEY, b"tamper me", AAD)
    for i in range(len(blob)):
        for flip in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[i] ^= flip
            with pytest.raises(DecryptionFailed):
                open_sealed(KEY, bytes(tampered), AAD)


def test_every_truncation_fails() -> None:
    blob = seal(KEY, b"truncate me", AAD)
    for n in range(len(blob)):
        with pytest.raises(DecryptionFailed):
            open_sealed(KEY, blob[:n], AAD)
    with pytest.raises(DecryptionFailed):
        open_sealed(KEY, blob[1:], AAD)


def test_appended_bytes_fail() -> None:
    blob = seal(KEY, b"x", AAD)
    with pytest.raises(DecryptionFailed):
        open_sealed(KEY, blob + b"\x00", AAD)


def test_unknown_version_fails() -> None:
    blob = seal(KEY, b"x", AAD)
    with pytest.raises(DecryptionFailed, match="malformed"):
        open_sealed(KEY, b"\x02" + blob[1:], AAD)


def test_decryption_failed_is_a_keyless_error() -> None:
    assert issubclass(DecryptionFailed, KeylessError)


def test_new_key() -> None:
    keys = {new_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) == KEY_BYTES == 32 for k in keys)


def test_derive_is_deterministic_and_32_bytes() -> None:
    assert derive(KEY, "client-secret-pepper") == derive(KEY, "client-secret-pepper")
    assert len(derive(KEY, "client-secret-pepper")) == 32


def test_derive_differs_per_purpose() -> None:
    purposes = ["client-secret-pepper", "tls-key-password", "", "a", "A", "tls-key-password2"]
    derived = {derive(KEY, p) for p in purposes}
    assert len(derived) == len(purposes)


def test_derive_differs_per_kek_and_is_not_the_kek() -> None:
    other = new_key()
    assert derive(KEY, "p") != derive(other, "p")
    assert derive(KEY, "p") != KEY


def test_derived_key_seals_and_is_separated() -> None:
    k1, k2 = derive(KEY, "one"), derive(KEY, "two")
    blob = seal(k1, b"x", AAD)
    assert open_sealed(k1, blob, AAD) == b"x"
    with pytest.raises(DecryptionFailed):
        open_sealed(k2, blob, AAD)
    with pytest.raises(DecryptionFailed):
        open_sealed(KEY, blob, AAD)
