"""Which resource a client_credentials request is for (RFC 6749 §3.3, RFC 8707; catalog A15, A16).

Entra's rule: the scope is `{resource}/.default` (several scopes only if they name the same
resource); RFC 8707 `resource=` names it directly. Both may be sent if they agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from keyless.oauth.errors import InvalidScope, InvalidTarget

DEFAULT_SUFFIX = "/.default"
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(frozen=True)
class RequestedResource:
    identifier: str
    via_resource_param: bool


def _from_scope(scope: str) -> str:
    tokens = scope.split(" ")
    resources: set[str] = set()
    for token in tokens:
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidScope("malformed scope", detail="scope_syntax")
        if not token.endswith(DEFAULT_SUFFIX) or len(token) == len(DEFAULT_SUFFIX):
            raise InvalidScope("client_credentials requires a scope of the form {resource}/.default",
                               detail="scope_not_default")
        resources.add(token[: -len(DEFAULT_SUFFIX)])
    if len(resources) != 1:
        raise InvalidScope("all scopes must name the same resource", detail="scope_multiple_resources")
    return resources.pop()


def _check_resource(resource: str) -> None:
    parts = urlsplit(resource)
    if not parts.scheme or "#" in resource or not _SCOPE_TOKEN.fullmatch(resource):
        raise InvalidTarget("resource must be an absolute URI without a fragment", detail="resource_syntax")


_ACCEPTED: dict[tuple[str | None, str | None], RequestedResource] = {}  # at most 256; refusals never kept


def requested_resource(scope: str | None, resource: str | None) -> RequestedResource:
    """The resource a request names. A pure function of the two strings, and a client sends the same
    ones every time: an accepted answer is remembered (issue 18); a refused one is decided anew."""
    key = (scope, resource)
    found = _ACCEPTED.get(key)
    if found is None:
        found = _requested_resource(scope, resource)
        if len(_ACCEPTED) >= 256:
            _ACCEPTED.clear()
        _ACCEPTED[key] = found
    return found


def _requested_resource(scope: str | None, resource: str | None) -> RequestedResource:
    if resource is not None:
        _check_resource(resource)
        if scope is not None and _from_scope(scope) != resource:
            raise InvalidTarget("scope and resource name different resources", detail="scope_resource_mismatch")
        return RequestedResource(resource, via_resource_param=True)
    if scope is None:
        raise InvalidScope("scope is required: use {resource}/.default", detail="scope_missing")
    return RequestedResource(_from_scope(scope), via_resource_param=False)

