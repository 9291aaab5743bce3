"""Types and ranges of the claims every JWT we read must respect, checked in one place for every
parser (client assertions, federated tokens, `keyless.verify`, the server's bearer checks).

RFC 7519 §2 defines a NumericDate as a JSON number of seconds; we accept an integer or a finite
number in 0 <= t < 2**53 (exactly representable as a double, about 285 million years): a boolean,
a string, a negative number or a larger one is an invalid token, so no caller ever converts,
compares or stores an out-of-range time (`float(10**400)` raises; `NaN` compares false with every
limit, so a NaN `exp` would never expire). `iss`, `sub` and `jti` are strings, `aud` a string or an
array of strings (RFC 7519 §4.1); a claim of the wrong type makes the token invalid instead of
being read as absent (docs/security.md, "Hostile numbers and encodings").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from keyless.jose.errors import InvalidClaim

MAX_NUMERIC_DATE = 2**53  # exclusive
NUMERIC_DATES = ("exp", "nbf", "iat")
STRINGS = ("iss", "sub", "jti")
ACCESS_TOKEN_STRINGS = ("tid", "client_id", "idtyp", "scp")
_ABSENT: Any = object()


def numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """The claim as seconds, None when absent; `InvalidClaim` for any other type or range."""
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):  # a tuple: `int | float` is rebuilt per call
        raise InvalidClaim(name, "is not a NumericDate")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidClaim(name, "is not a NumericDate")
    if not 0 <= value < MAX_NUMERIC_DATE:  # compared before any float(): exact for every int
        raise InvalidClaim(name, "is out of range")
    return float(value)


def string_claim(claims: Mapping[str, Any], name: str) -> str | None:
    if name not in claims:
        return None
    value = claims[name]
    if not isinstance(value, str):
        raise InvalidClaim(name, "is not a string")
    return value


def string_list_claim(claims: Mapping[str, Any], name: str) -> list[str] | None:
    if name not in claims:
        return None
    value = claims[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClaim(name, "is not an array of strings")
    return value


def audience_claim(claims: Mapping[str, Any]) -> list[str] | None:
    """`aud` as a list (RFC 7519 §4.1.3: one string or an array of strings)."""
    if isinstance(claims.get("aud"), str):
        return [claims["aud"]]
    return string_list_claim(claims, "aud")


def check_registered(claims: Mapping[str, Any]) -> None:
    """Every registered claim present has its type and range; raises `InvalidClaim`.

    On every JWT we read, so written for speed (issue 18): an int NumericDate in range and a string
    are accepted inline; any other value goes through `numeric_date`/`audience_claim` for the verdict
    and the message. The rules and their order are those of the functions above."""
    for name in NUMERIC_DATES:
        value = claims.get(name, _ABSENT)
        if value is not _ABSENT and not (type(value) is int and 0 <= value < MAX_NUMERIC_DATE):
            numeric_date(claims, name)
    _strings(claims, STRINGS)
    if not isinstance(claims.get("aud", ""), str):
        audience_claim(claims)


def check_access_token_types(claims: Mapping[str, Any]) -> None:
    """The registered claims plus what an access token carries (RFC 9068 §2.2, Entra's v2 tokens):
    `tid`, `client_id`, `idtyp` strings, `scp` a space-delimited string, `roles` an array of strings."""
    check_registered(claims)
    _strings(claims, ACCESS_TOKEN_STRINGS)
    string_list_claim(claims, "roles")


def _strings(claims: Mapping[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if not isinstance(claims.get(name, ""), str):  # absent reads as "": nothing to check
            raise InvalidClaim(name, "is not a string")
