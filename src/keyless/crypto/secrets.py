"""Client secrets: server-generated, recognisable, checksummed, stored only as a keyed hash.

Format: ``kls_`` + 43 base62 characters (256 random bits) + 6 base62 characters of CRC32 over
everything before them. Leak scanners match the prefix and verify the checksum offline, so they find
Keyless secrets with almost no false positives (requirements §4.5). The checksum only tells a secret
from noise; it never authenticates anything.

Storage is HMAC-SHA-256 under a server pepper, not bcrypt or argon2: the input already has 256 bits
of entropy, so a slow hash adds no protection and would cost every token request (catalog K02).
"""

from __future__ import annotations

import hmac
import re
import secrets as _stdlib_secrets
import zlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

PREFIX = "kls_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_LEN = 43  # 62**43 > 2**256
_CHECK_LEN = 6  # 62**6 > 2**32
SECRET_LEN = len(PREFIX) + _BODY_LEN + _CHECK_LEN
PATTERN = re.compile(r"kls_[0-9A-Za-z]{49}")
MAX_PRESENTED_LEN = 512  # anything longer is not ours and is refused before hashing


def _base62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        out.append(_ALPHABET[rem])
    if value:
        raise ValueError("value does not fit")
    return "".join(reversed(out))


def _checksum(head: str) -> str:
    return _base62(zlib.crc32(head.encode("ascii")), _CHECK_LEN)


def new_client_secret() -> str:
    head = PREFIX + _base62(int.from_bytes(_stdlib_secrets.token_bytes(32), "big"), _BODY_LEN)
    return head + _checksum(head)


def has_valid_checksum(candidate: str) -> bool:
    """For leak scanning: is this string shaped like a Keyless secret with a correct checksum?"""
    if len(candidate) != SECRET_LEN or not PATTERN.fullmatch(candidate):
        return False
    head, check = candidate[:-_CHECK_LEN], candidate[-_CHECK_LEN:]
    return hmac.compare_digest(_checksum(head), check)


def hint(secret: str) -> str:
    """The three characters an admin sees to tell secrets apart (as Entra's `hint`)."""
    return secret[len(PREFIX) : len(PREFIX) + 3]


class SecretHasher:
    """HMAC-SHA-256 under a pepper that lives outside the database (derived from the KEK)."""

    def __init__(self, pepper: bytes, pepper_id: str = "p1") -> None:
        if len(pepper) < 32:
            raise ValueError("pepper must be at least 256 bits")
        self._pepper = pepper
        self._keyed = crypto_hmac.HMAC(pepper, hashes.SHA256())  # copied per digest: the key is set up once
        self.pepper_id = pepper_id

    def digest(self, secret: str) -> bytes:
        # A copy of an HMAC already keyed with the pepper: OpenSSL's one-shot `hmac.digest` looks the
        # algorithm up and sets the key up again on every call, and the standard library's `HMAC.copy`
        # is Python around OpenSSL's (issue 18: 3.8 -> 1.4 us on the benchmark machine).
        mac = self._keyed.copy()
        mac.update(secret.encode("utf-8", "surrogatepass"))
        return mac.finalize()

    @staticmethod
    def matches(presented_digest: bytes, stored_digest: bytes) -> bool:
        return hmac.compare_digest(presented_digest, stored_digest)
