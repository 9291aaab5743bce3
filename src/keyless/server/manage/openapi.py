"""The management API's OpenAPI document, completed from the declarations the server enforces.

FastAPI documents what it knows (paths, parameters, bodies, success schemas). This module adds what
only Keyless knows, from the same objects that enforce it (docs/api.md, "Access" and "Errors"):
- each operation's access: `security` (the bearer scheme, RFC 6750) or none for a public one,
  `x-keyless-role`, and a sentence in the description (`access.py` is the one declaration);
- the problem+json errors (RFC 9457) the server really sends, with their stable `code`s: 400 for a
  request that does not validate (never FastAPI's default 422, which this server never sends),
  401/403 for the token and the role, 404/409/412/413 where they can happen;
- the `Link` header of a paged list (`keyless.server.manage.paging`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from keyless.directory.bootstrap import MANAGEMENT_URI
from keyless.server.manage.access import BEARER_SCHEME, ROLE_EXTENSION, Requirement, check_declarations
from keyless.server.manage.paging import LINK_HEADER_DOC
from keyless.server.manage.problems import PROBLEM

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable and meant for scripts.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "urn:keyless:problem:{code}"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "array", "description": "validation_failed only: where and what",
                   "items": {"type": "object", "properties": {"loc": {"type": "array", "items": {"type": "string"}},
                                                              "msg": {"type": "string"}}}},
        "correlation_id": {"type": "string", "description": "internal_error only: find it in the server log"},
    },
}

_ERRORS: dict[str, str] = {
    "400": "The request does not validate: `validation_failed` (with `errors`), `invalid_cursor`, or a value "
           "the directory refuses (for example `invalid_token_lifetime`, `not_a_certificate`, `vault_bad_parameter`).",
    "401": "No token, or an invalid one (expired, wrong audience, unknown key, another tenant's), or an "
           "unknown tenant: `unauthenticated` or `invalid_token`, with a `WWW-Authenticate: Bearer` challenge.",
    "403": "The token is valid but lacks the declared role: `forbidden` (or `vault_forbidden` when the "
           "vault's own grants refuse).",
    "404": "The named object does not exist in this tenant, or is not the caller's to see (for example "
           "`application_not_found`, `host_not_found`, `vault_not_found`, `secret_not_found`).",
    "409": "The object conflicts with an existing one (for example `identifier_uri_in_use`, `vault_conflict`).",
    "412": "The `If-Match` version is not the current one: `vault_precondition_failed`.",
    "413": "The body is over the size cap: `body_too_large` or `vault_value_too_large`.",
}


def _error(status: str) -> dict[str, Any]:
    return {"description": _ERRORS[status],
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _statuses(method: str, path: str, requirement: Requirement, operation: dict[str, Any]) -> list[str]:
    out = ["400"]
    if not requirement.public:
        out += ["401", "403"]
    if path.count("{") > 1 or "requestBody" in operation or method == "get":
        out.append("404")  # a named object, or a reference in the body or query, may be missing
    if method in {"post", "put", "patch"}:
        out.append("409")
    if any(p.get("name") == "if-match" for p in operation.get("parameters", [])):
        out.append("412")
    if "requestBody" in operation:
        out.append("413")
    return out


def complete(app: FastAPI) -> dict[str, Any]:
    """The document for `app`; `UndeclaredAccess` if an operation declares no access."""
    table = check_declarations(app)
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {BEARER_SCHEME: {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An access token from this tenant's token endpoint for the management API "
                       f"(scope `{MANAGEMENT_URI}/.default`), issued with client credentials.",
    }}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            requirement = table[(method, path)]
            operation["security"] = [] if requirement.public else [{BEARER_SCHEME: []}]
            operation[ROLE_EXTENSION] = requirement.role
            lead = operation.get("description") or operation.get("summary", "")
            operation["description"] = f"{lead}\n\n**Access:** {requirement.sentence}".strip()
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in _statuses(method, path, requirement, operation):
                responses.setdefault(status, _error(status))
            if any(p.get("name") == "cursor" for p in operation.get("parameters", [])) and "200" in responses:
                responses["200"].setdefault("headers", {})["Link"] = LINK_HEADER_DOC  # a paged list
    return doc


def install(app: FastAPI) -> None:
    """Check the declarations now (at build time) and serve the completed document."""
    check_declarations(app)
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cache:
            cache.update(complete(app))
        return cache

    app.openapi = openapi  # type: ignore[method-assign]
