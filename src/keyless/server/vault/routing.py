"""Routing on the raw request path: each segment is percent-decoded exactly once and then validated
(catalog G01), so `..%2Fx`, `%00` or overlong UTF-8 in a name is a 400 — never a different route,
never a second decoding."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from keyless.errors import KeylessError
from keyless.vault import model as m
from keyless.vault.errors import BadParameter


class NoRoute(KeylessError):
    def __init__(self, status: int) -> None:
        self.status = status


@dataclass(frozen=True)
class Route:
    action: str
    name: str | None = None
    version: str | None = None


# (first segment, number of segments, third segment or None for "any") -> {method: action}
_SHAPES: dict[tuple[str, int, str | None], dict[str, str]] = {
    ("secrets", 1, None): {"GET": "list"},
    ("secrets", 2, None): {"PUT": "set", "GET": "get", "PATCH": "update", "DELETE": "delete"},
    ("secrets", 3, "versions"): {"GET": "versions"},
    ("secrets", 3, "backup"): {"POST": "backup"},
    ("secrets", 3, None): {"GET": "get", "PATCH": "update"},
    ("deletedsecrets", 1, None): {"GET": "list_deleted"},
    ("deletedsecrets", 2, None): {"GET": "get_deleted", "DELETE": "purge"},
    ("deletedsecrets", 3, "recover"): {"POST": "recover"},
}


# The vault role each operation needs (docs/vault.md): the declaration the authorization matrix
# (tests/integration/server/test_vault_matrix.py) calls every operation against, role by role.
REQUIRED_ROLE: dict[str, str] = {
    "list": m.LIST, "set": m.SET, "get": m.GET, "update": m.SET, "delete": m.DELETE, "versions": m.LIST,
    "backup": m.BACKUP, "restore": m.RESTORE, "list_deleted": m.LIST, "get_deleted": m.LIST,
    "purge": m.PURGE, "recover": m.RECOVER,
}
ACTIONS = {a for methods in _SHAPES.values() for a in methods.values()} | {"restore"}
if set(REQUIRED_ROLE) != ACTIONS:  # pragma: no cover - a route added without its role fails at import
    raise RuntimeError(f"vault routes without a declared role: {sorted(ACTIONS ^ set(REQUIRED_ROLE))}")


def _segment(raw: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise BadParameter("the path is not valid UTF-8") from None


def route(method: str, raw_path: str) -> Route:
    if not raw_path.startswith("/"):
        raise NoRoute(404)
    segments = [_segment(s) for s in raw_path[1:].split("/")]
    if method == "POST" and segments == ["secrets", "restore"]:
        return Route("restore")
    head, count = segments[0], len(segments)
    third = segments[2] if count == 3 else None
    methods = _SHAPES.get((head, count, third))
    version = None
    if methods is None:
        methods = _SHAPES.get((head, count, None))
        version = third or None  # `/secrets/{name}/` (empty third segment) means the latest (compat §5.1)
    if methods is None:
        raise NoRoute(404)
    action = methods.get(method)
    if action is None:
        raise NoRoute(405)
    return Route(action, name=segments[1] if count >= 2 else None, version=version)
