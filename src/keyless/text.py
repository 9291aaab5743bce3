"""The one sanitiser for text that an untrusted party can influence (docs/security.md, "Hostile text").

Three uses, three functions, one character policy:

- `stored`: what we keep and later show (sign-in `detail`, claimed client ids, grant types, audit
  rows): no control, format, separator or surrogate character survives, so a stored value can forge
  no log row, drive no terminal and is accepted by every database (PostgreSQL refuses NUL), and it is
  capped in length.
- `description`: what goes on the wire as an error text (`error_description`, problem `detail`, Key
  Vault `message`): only RFC 6749 §5.2's characters (%x20-21 / %x23-5B / %x5D-7E), whatever the
  caller of an error class passed in, so no surface can forget.
- `terminal`: what the CLI prints in a table cell: every control character shown escaped (`\\x1b`),
  so a stored value that predates this module still cannot reach an operator's terminal raw.

`printable` is the same policy as a test, for inputs better refused than altered (vault tags).
"""

from __future__ import annotations

import re

REPLACEMENT = "?"
# Fast paths (these run on every sign-in record and error): text already inside the policy is
# returned as it is after one C-level match instead of a Python test per character.
_PRINTABLE_ASCII = re.compile(r"[ -~]*")
_DESCRIPTION_SET = re.compile(r"[ !#-\[\]-~]*")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
DESCRIPTION_LIMIT = 512


def _unsafe(c: str) -> bool:
    """Python's "printable" (the rule the directory's name checks use): no control (Cc), format (Cf:
    bidi overrides, zero-width), surrogate, private-use or unassigned character, no separator but
    the ASCII space."""
    return not (" " <= c <= "~" or c.isprintable())


def printable(value: str) -> bool:
    """Whether `value` would pass `stored` unchanged: for inputs that are better refused than altered
    (a value its owner reads back, such as a vault tag)."""
    return _PRINTABLE_ASCII.fullmatch(value) is not None or not any(_unsafe(c) for c in value)


def stored(value: str | None, limit: int) -> str | None:
    """`value` made safe to store and show: unsafe characters replaced by `?`, at most `limit` characters.

    None and "" stay None (nothing was sent). Printable non-ASCII text (names in other scripts) is kept.
    """
    if not value:
        return None
    value = value[:limit]
    if value.isascii() and value.isprintable():  # = _PRINTABLE_ASCII, at half the cost (every log row's texts)
        return value
    return "".join(REPLACEMENT if _unsafe(c) else c for c in value)


def stored_tree(value: object, limit: int) -> object:
    """`stored` applied to every string (keys too) of a JSON-like value, e.g. an audit row's details."""
    if isinstance(value, str):
        return stored(value, limit) or ""
    if isinstance(value, dict):
        return {stored(str(k), limit) or "": stored_tree(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [stored_tree(v, limit) for v in value]
    return value


def description(value: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """`value` within RFC 6749 §5.2's `error_description` set: `"` becomes `'`, `\\` becomes `/`, any
    other character outside %x20-7E becomes `?`; capped at `limit` characters."""
    value = value[:limit]
    if _DESCRIPTION_SET.fullmatch(value):
        return value
    out = []
    for c in value:
        if c == '"':
            out.append("'")
        elif c == "\\":
            out.append("/")
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append(REPLACEMENT)
    return "".join(out)


def is_description(value: str) -> bool:
    """Whether `value` is already within the RFC 6749 §5.2 `error_description` set."""
    return _DESCRIPTION_SET.fullmatch(value) is not None


def terminal(value: str) -> str:
    """`value` for a terminal: unsafe characters shown as Python-style escapes (`\\x1b`, `\\u202e`)."""
    if value.isprintable():  # the same test as `_unsafe` on every character, in C (a 20,000-row table)
        return value
    out = []
    for c in value:
        if not _unsafe(c):
            out.append(c)
        elif c in _SHORT:
            out.append(_SHORT[c])
        elif ord(c) < 0x100:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    return "".join(out)
