"""Strict checks on a compact JWS before any JOSE library parses it (requirements §0 item 4).

Size caps first (catalog B22/J09: no base64 or JSON work on a megabyte), then shape (compact
serialisation, three segments: JWS JSON serialisation and five-segment JWE are refused, B21/J08),
then the header: valid UTF-8 JSON object, no duplicate members (a parser that keeps the last one
and one that keeps the first would disagree), and no `crit` we do not understand (B19/J07).

Numbers: `NaN` and `Infinity` are not JSON (RFC 8259 §6) and a number beyond what an IEEE 754 double
holds (`1e400`, an integer of hundreds of digits) is not I-JSON (RFC 7493 §2.2); Python's `json`
accepts all of them, so `loads_strict` refuses them itself (`UnacceptableNumber`), before any claim
check could compare, convert or store one (docs/security.md, "Hostile numbers and encodings").

Base64url: each segment must be the one canonical encoding of its bytes (RFC 4648 §3.5: the spare
bits of the last character are zero, and a length of 1 mod 4 is no encoding at all, and nothing but
the 64 characters of the url-safe alphabet), so one token has exactly one text and single-use checks
cannot be dodged by re-encoding a signature.

Speed (issue 18, docs/verify.md): `loads_strict` parses with orjson and keeps its answer only when
orjson's own serialisation of the result is the input, byte for byte. A document with a duplicate
member, or an integer orjson read as a float, cannot be the serialisation of what orjson returned, so
that one comparison proves the strict rules hold; anything else (other spacing or escapes, a refusal
by orjson) goes to the strict parser, whose answer or error is then the result. Keyless signs its
tokens with orjson, so its own tokens take the fast path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import sys
from typing import Any

import orjson

from keyless.jose.claims import check_registered
from keyless.jose.errors import InvalidClaim, MalformedJose, UnacceptableNumber, UnsupportedCritical

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_ALPHABET_BYTES = _ALPHABET.encode("ascii")
# The bits of the last character that carry no data, by segment length mod 4 (RFC 4648 §3.5).
_SPARE_BITS = {0: 0, 2: 0x0F, 3: 0x03}
_MAX_INT_DIGITS = 309  # 10**309 > the largest finite double
_MAX_DOUBLE = int(sys.float_info.max)
_B64U_PADDED = re.compile(r"[A-Za-z0-9_-]*={0,2}")
# base64url to standard base64 for binascii: `-` and `_` become `+` and `/`; every byte outside the
# url-safe alphabet (`+`, `/`, `=`, whitespace, ...) becomes `*`, which binascii's strict mode refuses.
_TO_STANDARD = bytes(
    c if chr(c).isascii() and chr(c).isalnum() else 0x2B if c == 0x2D else 0x2F if c == 0x5F else 0x2A
    for c in range(256))
_PADDING = (b"", b"", b"==", b"=")  # by length mod 4; 1 is refused before
_PADDING_TEXT = ("", "", "==", "=")
MAX_HEADER_SEGMENT = 4096
UNDERSTOOD_CRIT: frozenset[str] = frozenset()


__all__ = [
    "InvalidClaim", "MalformedJose", "UnacceptableNumber", "UnsupportedCritical", "b64u_decode", "canonical_digest",
    "check_compact", "is_b64u_compact", "is_canonical_b64u", "loads_strict", "split_compact",
]


def _refuse_constant(name: str) -> Any:
    raise UnacceptableNumber("JSON number is not finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf
        raise UnacceptableNumber("JSON number is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:  # before int(): no quadratic conversion of a huge digit string
        raise UnacceptableNumber("JSON number is out of range")
    value = int(text)
    if abs(value) > _MAX_DOUBLE:
        raise UnacceptableNumber("JSON number is out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # a repeated name collapsed into one entry
        raise MalformedJose("duplicate member in JOSE JSON")
    return out


# One decoder for every call: `json.loads` with hooks builds a new decoder and scanner each time, a
# measurable share of a token validation (docs/verify.md, "Performance"). The decoder holds no state.
_STRICT = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant,
                           parse_float=_finite_float, parse_int=_bounded_int)


def _loads_exact(data: bytes) -> Any:
    """The strict parser itself: Python's json with the hooks above (duplicates at any depth, NaN and
    Infinity, numbers beyond a double, invalid UTF-8 and a byte-order mark all refused)."""
    try:
        return _STRICT.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, MalformedJose):
            raise
        raise MalformedJose("JOSE segment is not valid UTF-8 JSON") from None
    except RecursionError:  # deeply nested arrays/objects: refuse, never crash the request handler
        raise MalformedJose("JOSE JSON is nested too deeply") from None


def loads_strict(data: bytes) -> Any:
    """Parse JOSE JSON under the strict rules above; the same value or the same refusal as the strict
    parser, at orjson's speed for a document written as orjson writes it (see the module docstring).

    Why the comparison is a proof: orjson accepts only RFC 8259 JSON (no NaN or Infinity, no
    out-of-range float, no byte-order mark, no invalid UTF-8 or lone surrogate), keeps the last of
    duplicate members and reads an integer beyond 64 bits as a float. If `orjson.dumps(value)` equals
    `data`, then `data` is the serialisation of `value`: its objects have exactly the members of
    `value`'s dicts (so none is repeated), and each of its integers is printed from an int (a float
    is always printed with a `.` or an exponent), so the strict parser would return `value` too.
    """
    try:
        value = orjson.loads(data)
        if orjson.dumps(value) == data:
            return value
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # refused, or nested beyond orjson's limit
        pass
    return _loads_exact(data)


def is_b64u_compact(token: str) -> bool:
    """True when `token` is base64url segments (RFC 7515 §2, no padding) joined by exactly two dots:
    the segment-by-segment `[A-Za-z0-9_-]*` match in one pass in C (deleting the alphabet's bytes
    leaves the dots), about a third of the regex's time on a client assertion (issue 18)."""
    return token.isascii() and token.encode("ascii").translate(None, _ALPHABET_BYTES) == b".."


def is_canonical_b64u(segment: str) -> bool:
    """True when `segment` (unpadded base64url alphabet) is the only encoding of its bytes."""
    spare = _SPARE_BITS.get(len(segment) % 4)
    if spare is None:
        return False
    return spare == 0 or not segment or not _ALPHABET.find(segment[-1]) & spare


try:  # SIMD base64 (issue 18: a token's segments in ~6x fewer instructions than binascii + translate)
    from pybase64 import b64decode as _simd_b64decode
    from pybase64 import b64encode as _simd_b64encode

    _SIMD = True
except ImportError:  # pragma: no cover - a dependency; the standard library gives the same encoding
    _SIMD = False

    def b64u_encode(data: bytes) -> bytes:
        """base64url without padding (RFC 7515 §2)."""
        return base64.urlsafe_b64encode(data).rstrip(b"=")

else:

    def b64u_encode(data: bytes) -> bytes:
        """base64url without padding (RFC 7515 §2): `base64.urlsafe_b64encode(data).rstrip(b"=")` in
        one C call (a token's payload, signature and id each take one, issue 18)."""
        return _simd_b64encode(data, b"-_", padded=False)


def b64u_decode(segment: str) -> bytes:
    """Decode one unpadded base64url segment, refusing any non-canonical encoding (see above) and any
    character outside the url-safe alphabet (padding, `+`, `/`, whitespace, non-ASCII)."""
    spare = _SPARE_BITS.get(len(segment) % 4)
    if spare is None:
        raise MalformedJose("invalid base64url")  # 4k+1 characters never decode to whole bytes
    if spare and _ALPHABET.find(segment[-1]) & spare:  # -1 (not in the alphabet) has every bit set
        raise MalformedJose("non-canonical base64url")
    if _SIMD:
        # pybase64 with the url-safe alphabet and `validate` refuses whitespace, non-ASCII and every
        # other byte outside both alphabets, but still takes `+`, `/` and an inner `=` (a deprecation
        # warning, not an error): those three are refused first. Then it answers exactly as the
        # binascii path below on every input (tests/unit/jose/test_hygiene.py compares the two), in
        # a third of the time for a token's payload (issue 18: the validator decodes two segments of
        # every token it has not seen).
        if "+" in segment or "/" in segment or "=" in segment:
            raise MalformedJose("invalid base64url")
        try:
            return _simd_b64decode(segment + _PADDING_TEXT[len(segment) % 4], b"-_", True)
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            raise MalformedJose("invalid base64url") from None
    return _b64u_decode_binascii(segment)


def _b64u_decode_binascii(segment: str) -> bytes:
    """`b64u_decode` after its length and spare-bit checks, with the standard library alone."""
    try:
        standard = segment.encode("ascii").translate(_TO_STANDARD) + _PADDING[len(segment) % 4]
        return binascii.a2b_base64(standard, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise MalformedJose("invalid base64url") from None


def check_compact(token: str, *, max_length: int, allow_padding: bool = False) -> dict[str, Any]:
    """Validate the outer shape of a compact JWS and return its header. Raises `MalformedJose`."""
    return split_compact(token, max_length=max_length, allow_padding=allow_padding)[0]


def split_compact(
    token: str, *, max_length: int, allow_padding: bool = False, claim_types: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Like `check_compact`, returning the (unverified) header and payload objects. `claim_types=False`
    skips the registered-claim type checks, only to read who an attempt claims to be for the log."""
    if len(token) > max_length:
        raise MalformedJose("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedJose("not a compact JWS")
    well_formed = all(_B64U_PADDED.fullmatch(p) for p in parts) if allow_padding else is_b64u_compact(token)
    if not well_formed or not parts[0] or not parts[1]:
        raise MalformedJose("invalid base64url segment")
    if len(parts[0]) > MAX_HEADER_SEGMENT:
        raise MalformedJose("header too large")
    if not is_canonical_b64u(parts[2].rstrip("=")):
        raise MalformedJose("non-canonical base64url")
    header = loads_strict(b64u_decode(parts[0].rstrip("=")))
    if not isinstance(header, dict):
        raise MalformedJose("header is not a JSON object")
    crit = header.get("crit")
    if crit is not None:
        if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
            raise MalformedJose("malformed crit")
        if not set(crit) <= UNDERSTOOD_CRIT:
            raise UnsupportedCritical("unsupported critical header")
    # Reject payloads with duplicate members too: the library would silently keep one of them.
    payload = loads_strict(b64u_decode(parts[1].rstrip("=")))
    if not isinstance(payload, dict):
        raise MalformedJose("payload is not a JSON object")
    if claim_types:
        check_registered(payload)
    return header, payload


def canonical_digest(token: str) -> str:
    """SHA-256 over the decoded header and payload of a JWS that passed `split_compact`: the key of a
    once-per-token check. Not the token's text, which can vary (padding; an ECDSA signature (r, s) is
    as valid as (r, n - s)) while the claims, and so the token's meaning, stay the same."""
    head, payload = token.split(".")[:2]
    digest = hashlib.sha256(b64u_decode(head.rstrip("=")))
    digest.update(b".")
    digest.update(b64u_decode(payload.rstrip("=")))
    return digest.hexdigest()
