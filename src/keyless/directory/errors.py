"""Directory errors: each carries a stable `code` (used by scripts) and an HTTP status. The message is
a problem `detail` on the wire, so it is held to RFC 6749 §5.2's set here, where every one is built
(keyless.text): no surface can reflect a caller's control characters."""

from __future__ import annotations

from keyless import text
from keyless.errors import KeylessError


class DirectoryError(KeylessError):
    status = 400
    title = "Bad request"

    def __init__(self, code: str, message: str) -> None:
        self.message = text.description(message)
        super().__init__(self.message)
        self.code = code


class Invalid(DirectoryError):
    status = 400
    title = "Invalid request"


class NotFound(DirectoryError):
    """Also what a caller gets for an object it may not see (anti-enumeration)."""

    status = 404
    title = "Not found"


class Conflict(DirectoryError):
    status = 409
    title = "Conflict"
