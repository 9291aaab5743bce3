"""Strict checks on a compact JWS before any JOSE library parses it (requirements §0 item 4).

Size caps first (catalog B22/J09: no base64 or JSON work on a megabyte), then shape (compact
serialisation, three segments: JWS JSON serialisation and five-segment JWE are refused, B21/J08),
then the header: valid UTF-8 JSON object, no duplicate members (a parser that keeps the last one
and one that keeps the first would disagree), and no `crit` we do not understand (B19/J07).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from keyless.errors import KeylessError

_B64U = re.compile(r"[A-Za-z0-9_-]*")
_B64U_PADDED = re.compile(r"[A-Za-z0-9_-]*={0,2}")
MAX_HEADER_SEGMENT = 4096
UNDERSTOOD_CRIT: frozenset[str] = frozenset()


class MalformedJose(KeylessError):
    """The input is not a compact JWS we are willing to parse; the message says which rule failed."""


class UnsupportedCritical(MalformedJose):
    """Well-formed, but it names a critical extension we do not implement (RFC 7515 §4.1.11)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedJose("duplicate member in JOSE JSON")
        out[key] = value
    return out


def loads_strict(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, MalformedJose):
            raise
        raise MalformedJose("JOSE segment is not valid UTF-8 JSON") from None
    except RecursionError:  # deeply nested arrays/objects: refuse, never crash the request handler
        raise MalformedJose("JOSE JSON is nested too deeply") from None


def b64u_decode(segment: str) -> bytes:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, ValueError):
        raise MalformedJose("invalid base64url") from None


def check_compact(token: str, *, max_length: int, allow_padding: bool = False) -> dict[str, Any]:
    """Validate the outer shape of a compact JWS and return its header. Raises `MalformedJose`."""
    return split_compact(token, max_length=max_length, allow_padding=allow_padding)[0]


def split_compact(
    token: str, *, max_length: int, allow_padding: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Like `check_compact`, returning the (unverified) header and payload objects."""
    if len(token) > max_length:
        raise MalformedJose("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedJose("not a compact JWS")
    pattern = _B64U_PADDED if allow_padding else _B64U
    if not all(pattern.fullmatch(p) for p in parts) or not parts[0] or not parts[1]:
        raise MalformedJose("invalid base64url segment")
    if len(parts[0]) > MAX_HEADER_SEGMENT:
        raise MalformedJose("header too large")
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
    return header, payload
