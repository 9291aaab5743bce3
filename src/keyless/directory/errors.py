"""Directory errors: each carries a stable `code` (used by scripts) and an HTTP status."""

from __future__ import annotations

from keyless.errors import KeylessError


class DirectoryError(KeylessError):
    status = 400
    title = "Bad request"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
