"""Names of vaults and secrets, checked once on the decoded value (catalog G01).

Secret names follow Key Vault (`^[0-9A-Za-z-]{1,127}$`, case-insensitive). Vault names are DNS
labels, because a vault is addressed as `{name}.vault.{domain}`: 3-24 characters as in Key Vault,
letters, digits and single hyphens, starting with a letter.
"""

from __future__ import annotations

import re

from keyless import text
from keyless.vault.errors import BadParameter

_SECRET = re.compile(r"[0-9A-Za-z-]{1,127}")
_VAULT = re.compile(r"[a-z](?:[a-z0-9]|-(?!-)){1,22}[a-z0-9]")
_TAG_KEY_MAX = 512
_TAG_VALUE_MAX = 256
MAX_TAGS = 15
MAX_CONTENT_TYPE = 255


def secret_name(value: str) -> str:
    """The name as given (display case); compare with `secret_key`."""
    if not _SECRET.fullmatch(value):
        raise BadParameter("secret names are 1-127 characters: letters, digits and '-'")
    return value


def secret_key(value: str) -> str:
    """The case-insensitive identity of a secret name."""
    return secret_name(value).lower()


def vault_name(value: str) -> str:
    value = value.lower()
    if not _VAULT.fullmatch(value):
        raise BadParameter(
            "vault names are 3-24 characters: letters, digits and single '-', starting with a letter "
            "and not ending with '-'"
        )
    return value


def tags(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_TAGS:
        raise BadParameter(f"tags must be an object of at most {MAX_TAGS} string values")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str) or not 0 < len(k) <= _TAG_KEY_MAX \
                or len(v) > _TAG_VALUE_MAX:
            raise BadParameter("tag names are 1-512 characters and tag values at most 256")
        if not (text.printable(k) and text.printable(v)):
            # Shown later in operators' terminals and other clients: refused, not silently altered.
            raise BadParameter("tag names and values must be printable text")
        out[k] = v
    return out


def content_type(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_CONTENT_TYPE or not text.printable(value):
        raise BadParameter(f"contentType must be printable text of at most {MAX_CONTENT_TYPE} characters")
    return value
