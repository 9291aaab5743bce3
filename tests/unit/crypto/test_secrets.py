"""Client secrets: format, checksum, hint and keyed hashing (catalog K02)."""

from __future__ import annotations

import hashlib
import hmac
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyless.crypto import secrets
from keyless.crypto.secrets import (
    MAX_PRESENTED_LEN,
    PATTERN,
    PREFIX,
    SECRET_LEN,
    SecretHasher,
    has_valid_checksum,
    hint,
    new_client_secret,
)

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PEPPER = bytes(range(32))


def _base62_value(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 62 + ALPHABET.index(ch)
    return value


def test_format_prefix_length_alphabet() -> None:
    secret = new_client_secret()
    assert secret.startswith("kls_")
    assert PREFIX == "kls_"
    assert SECRET_LEN == 4 + 43 + 6 == 53
    assert len(secret) == SECRET_LEN
    assert set(secret[len(PREFIX) :]) <= set(ALPHABET)
    assert PATTERN.fullmatch(secret)
    assert len(secret) < MAX_PRESENTED_LEN


def test_checksum_is_crc32_of_head_in_base62() -> None:
    secret = new_client_secret()
    head, check = secret[:-6], secret[-6:]
    assert _base62_value(check) == zlib.crc32(head.encode("ascii"))


def test_body_carries_256_bits() -> None:
    assert 62**43 >= 2**256
    body = new_client_secret()[len(PREFIX) : -6]
    assert len(body) == 43
    assert _base62_value(body) < 2**256


def test_checksum_validates() -> None:
    for _ in range(50):
        assert has_valid_checksum(new_client_secret())


def test_every_single_character_mutation_fails_the_checksum() -> None:
    secret = new_client_secret()
    for i in range(len(secret)):
        for ch in ALPHABET:
            if ch == secret[i]:
                continue
            mutated = secret[:i] + ch + secret[i + 1 :]
            assert not has_valid_checksum(mutated), (i, ch)


def test_adjacent_transpositions_fail_the_checksum() -> None:
    secret = new_client_secret()
    for i in range(len(PREFIX), len(secret) - 1):
        if secret[i] == secret[i + 1]:
            continue
        swapped = secret[:i] + secret[i + 1] + secret[i] + secret[i + 2 :]
        assert not has_valid_checksum(swapped), i


def test_wrong_shape_is_rejected() -> None:
    secret = new_client_secret()
    assert not has_valid_checksum("")
    assert not has_valid_checksum(secret[:-1])
    assert not has_valid_checksum(secret + "0")
    assert not has_valid_checksum(" " + secret)
    assert not has_valid_checksum(secret + "\n")
    assert not has_valid_checksum("KLS_" + secret[4:])
    assert not has_valid_checksum("kls-" + secret[4:])
    assert not has_valid_checksum(secret[:10] + "-" + secret[11:])
    assert not has_valid_checksum(secret[:10] + "_" + secret[11:])
    assert not has_valid_checksum("x" * MAX_PRESENTED_LEN)


def test_non_ascii_lookalikes_are_rejected() -> None:
    secret = new_client_secret()
    # Fullwidth / Arabic-Indic digits match \d or \w in some regex modes; the pattern must not.
    for ch in ("\uff10", "\u0660", "\u00e9", "\u0391"):
        assert not has_valid_checksum(secret[:10] + ch + secret[11:])


def test_checksum_with_another_prefix_does_not_validate() -> None:
    body = new_client_secret()[len(PREFIX) : -6]
    head = "abc_" + body
    check = secrets._base62(zlib.crc32(head.encode()), 6)
    assert not has_valid_checksum(head + check)


@given(st.text(max_size=80))
def test_has_valid_checksum_never_raises(candidate: str) -> None:
    assert has_valid_checksum(candidate) in (True, False)


def test_base62_overflow_raises() -> None:
    assert secrets._base62(0, 3) == "000"
    assert secrets._base62(61, 1) == "z"
    assert secrets._base62(62, 2) == "10"
    with pytest.raises(ValueError):
        secrets._base62(62, 1)
    assert secrets._base62(2**32 - 1, 6) == secrets._base62(2**32 - 1, 6)


def test_pattern_finds_secrets_in_text() -> None:
    secret = new_client_secret()
    text = f'config = {{"client_secret": "{secret}"}}\n'
    found = PATTERN.findall(text)
    assert found == [secret]
    assert has_valid_checksum(found[0])


def test_hint_is_first_three_body_characters() -> None:
    secret = new_client_secret()
    assert hint(secret) == secret[4:7]
    assert len(hint(secret)) == 3
    assert hint("kls_abcdefg") == "abc"


def test_secrets_are_unique() -> None:
    generated = [new_client_secret() for _ in range(2000)]
    assert len(set(generated)) == len(generated)
    # The hint is random too, not constant.
    assert len({hint(s) for s in generated}) > 1000


def test_hasher_digest_is_hmac_sha256() -> None:
    hasher = SecretHasher(PEPPER)
    secret = new_client_secret()
    expected = hmac.new(PEPPER, secret.encode(), hashlib.sha256).digest()
    assert hasher.digest(secret) == expected
    assert len(hasher.digest(secret)) == 32
    assert hasher.digest(secret) != hashlib.sha256(secret.encode()).digest()


def test_hasher_digest_depends_on_pepper_and_secret() -> None:
    secret = new_client_secret()
    one = SecretHasher(PEPPER)
    two = SecretHasher(bytes(32))
    assert one.digest(secret) == SecretHasher(PEPPER).digest(secret)
    assert one.digest(secret) != two.digest(secret)
    assert one.digest(secret) != one.digest(new_client_secret())


def test_hasher_handles_lone_surrogates() -> None:
    hasher = SecretHasher(PEPPER)
    assert len(hasher.digest("kls_\ud800")) == 32
    assert hasher.digest("kls_\ud800") != hasher.digest("kls_\ud801")


def test_hasher_matches() -> None:
    hasher = SecretHasher(PEPPER)
    secret = new_client_secret()
    stored = hasher.digest(secret)
    assert SecretHasher.matches(hasher.digest(secret), stored)
    assert hasher.matches(hasher.digest(secret), stored)
    assert not SecretHasher.matches(hasher.digest(new_client_secret()), stored)
    assert not SecretHasher.matches(stored[:-1], stored)
    assert not SecretHasher.matches(b"", stored)


def test_hasher_requires_256_bit_pepper() -> None:
    with pytest.raises(ValueError):
        SecretHasher(b"")
    with pytest.raises(ValueError):
        SecretHasher(bytes(31))
    SecretHasher(bytes(32))
    SecretHasher(bytes(64))


def test_hasher_pepper_id() -> None:
    assert SecretHasher(PEPPER).pepper_id == "p1"
    assert SecretHasher(PEPPER, "p2").pepper_id == "p2"


def test_digest_is_hmac_sha256_under_the_pepper_every_time() -> None:
    """The keyed HMAC is copied per digest: each digest is HMAC-SHA-256(pepper, secret) on its own,
    whatever was digested before (a shared, updated state would chain the inputs)."""
    pepper = bytes(range(32))
    hasher = SecretHasher(pepper)
    for secret in ("a", "kls_" + "x" * 40, "a", "\u00e9t\u00e9", ""):
        assert hasher.digest(secret) == hmac.digest(pepper, secret.encode("utf-8"), "sha256")
