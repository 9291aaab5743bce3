"""Identifier helpers: GUIDs as Entra spells them (lower-case, hyphenated)."""

from __future__ import annotations

import uuid


def new_guid() -> str:
    return str(uuid.uuid4())


def is_guid(value: str) -> bool:
    """True for the canonical 36-character form only; other spellings are not identifiers here."""
    if len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
