"""RFC 6750 §3 challenges for refused requests (catalog J20).

`challenge(exc)` maps a refusal to `(status, headers, body)` for any framework: no credentials → 401
with a bare `Bearer realm=…` (no error code, §3.1); a bad token → 401 `error="invalid_token"`; an
oversized credential → 400 `error="invalid_request"` (J09); a valid token without the role/scope →
403 `error="insufficient_scope"` with `scope=`. The internal `reason` never reaches the client.
"""

from __future__ import annotations

import json
import re

from keyless.errors import KeylessError
from keyless.verify.claims import InvalidToken


class TokenTooLarge(InvalidToken):
    """The credential exceeds the size cap; refused before any parsing (catalog J09)."""


class MalformedAuthorization(InvalidToken):
    """The Authorization header is malformed (several of them, a scheme without a token, ...)."""


class KeysUnavailable(InvalidToken):
    """The issuer's keys could not be fetched and no fresh copy is cached (fail closed)."""


class InsufficientScope(KeylessError):
    """The token is valid but lacks every one of the `required` roles or scopes (or the token kind)."""

    def __init__(self, required: tuple[str, ...], reason: str = "insufficient scope") -> None:
        super().__init__(reason)
        self.required = required
        self.reason = reason


_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')


def _quote(value: str) -> str:
    """A quoted-string holding only the characters RFC 6750 allows in its attributes."""
    return '"' + _UNSAFE.sub("", value) + '"'


def challenge(
    exc: InvalidToken | InsufficientScope | None, *, realm: str | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """`(status, headers, body)` for a refused request; `exc=None` means no credentials were sent."""
    params = [f"realm={_quote(realm)}"] if realm else []
    if exc is None:
        status, error = 401, None
    elif isinstance(exc, InsufficientScope):
        status, error = 403, "insufficient_scope"
    elif isinstance(exc, TokenTooLarge | MalformedAuthorization):
        status, error = 400, "invalid_request"
    else:
        status, error = 401, "invalid_token"
    if error:
        params.append(f"error={_quote(error)}")
    if isinstance(exc, InsufficientScope) and exc.required:
        params.append(f"scope={_quote(' '.join(exc.required))}")
    value = "Bearer" + (" " + ", ".join(params) if params else "")
    body = json.dumps({"error": error or "unauthorized"}).encode()
    headers = [("www-authenticate", value), ("content-type", "application/json"),
               ("cache-control", "no-store")]
    return status, headers, body
