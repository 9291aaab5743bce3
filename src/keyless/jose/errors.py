"""Why a JOSE object was refused before any signature or claim semantics (see `keyless.jose.hygiene`)."""

from __future__ import annotations

from keyless.errors import KeylessError


class MalformedJose(KeylessError):
    """The input is not a compact JWS we are willing to parse; the message says which rule failed."""


class UnsupportedCritical(MalformedJose):
    """Well-formed, but it names a critical extension we do not implement (RFC 7515 §4.1.11)."""


class UnacceptableNumber(MalformedJose):
    """A number no interoperable JSON parser reads the same way: NaN, ±Infinity, or one that overflows
    an IEEE 754 double (RFC 7493 §2.2). Callers refuse it as they refuse a bad claim, never with a 5xx."""


class InvalidClaim(MalformedJose):
    """A registered claim of the wrong type or range (RFC 7519 §4.1): the token is invalid, never read
    as if the claim were absent. `claim` names it (for logs); the message never holds its value."""

    def __init__(self, claim: str, problem: str) -> None:
        super().__init__(f"{claim} {problem}")
        self.claim = claim
        self.problem = problem
