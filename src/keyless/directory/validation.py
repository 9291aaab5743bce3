"""Input rules for directory objects, applied at every write."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from keyless.directory.errors import Invalid

_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
_URI_CHARS = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,512}")
_TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
_DURATION = re.compile(r"(\d{1,6})([smhdy])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}


def display_name(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 256 or not value.isprintable():
        raise Invalid("invalid_display_name", "display name must be 1-256 printable characters")
    return value


def identifier_uri(value: str) -> str:
    if not _URI_CHARS.fullmatch(value):
        raise Invalid("invalid_identifier_uri", "identifier URI must be 1-512 visible ASCII characters")
    parts = urlsplit(value)
    if not parts.scheme or not (parts.netloc or parts.path) or parts.fragment or "#" in value:
        raise Invalid("invalid_identifier_uri", "identifier URI must be an absolute URI without a fragment")
    if value.endswith("/.default") or value.endswith("/"):
        raise Invalid("invalid_identifier_uri", "identifier URI must not end with / or /.default")
    if parts.scheme.lower() == "http":
        raise Invalid("invalid_identifier_uri", "identifier URI must not use http:")
    return value


def role_value(value: str) -> str:
    if not _ROLE.fullmatch(value):
        raise Invalid("invalid_role", "role must be letters, digits, '.', '_' or '-' (at most 120)")
    return value


def tenant_name(value: str) -> str:
    if not _TENANT_NAME.fullmatch(value):
        raise Invalid("invalid_tenant_name", "tenant name must be lower-case letters, digits, '.' or '-'")
    return value


def duration(value: str) -> int:
    """`30d`, `12h`, `90m`, `3600s`, `1y` → seconds."""
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise Invalid("invalid_duration", "duration must look like 30d, 12h, 90m, 3600s or 1y")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise Invalid("invalid_duration", "duration must be positive")
    return seconds
