"""Access declared once per management operation (issue 20): the app is not built without it, and the
OpenAPI document says what the server enforces (issue 17: security scheme, problem+json errors)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from keyless.server.manage import openapi
from keyless.server.manage.access import (
    ADMIN,
    READER,
    REQUIREMENTS,
    VAULT_DATA,
    Admin,
    PublicAccess,
    Reader,
    UndeclaredAccess,
)
from keyless.server.manage.api import create_management_app
from keyless.server.manage.auth import Caller


def _app(router: APIRouter) -> FastAPI:
    app = FastAPI(openapi_url="/manage/openapi.json", docs_url=None, redoc_url=None)
    app.include_router(router)
    return app


def test_route_added_without_access_declaration_refuses_to_build() -> None:
    router = APIRouter(prefix="/{tenant}/manage/v1")

    @router.get("/forgotten")
    async def forgotten(tenant: str) -> dict[str, str]:
        return {}

    with pytest.raises(UndeclaredAccess, match=r"GET /\{tenant\}/manage/v1/forgotten declares no access"):
        openapi.install(_app(router))


def test_route_declaring_two_access_levels_refuses_to_build() -> None:
    router = APIRouter(prefix="/{tenant}/manage/v1")

    @router.post("/ambiguous")
    async def ambiguous(tenant: str, a: Reader, b: Admin) -> dict[str, str]:
        return {}

    with pytest.raises(UndeclaredAccess, match="more than one access level"):
        openapi.install(_app(router))


def test_bare_starlette_route_cannot_bypass_the_declaration() -> None:
    app = _app(APIRouter())

    async def sneaky(request: Any) -> None:
        return None

    app.add_route("/{tenant}/manage/v1/sneaky", sneaky)
    with pytest.raises(UndeclaredAccess, match="is not an API route"):
        openapi.install(app)


def test_public_declaration_is_documented_without_security() -> None:
    router = APIRouter(prefix="/{tenant}/manage/v1")

    @router.get("/open", dependencies=[PublicAccess], summary="Open")
    async def open_route(tenant: str) -> dict[str, str]:
        return {}

    @router.get("/closed", summary="Closed")
    async def closed(tenant: str, caller: Reader) -> Caller:
        return caller

    app = _app(router)
    openapi.install(app)
    doc = app.openapi()
    public = doc["paths"]["/{tenant}/manage/v1/open"]["get"]
    assert (public["security"], public["x-keyless-role"]) == ([], "public")
    assert "401" not in public["responses"]
    assert doc["paths"]["/{tenant}/manage/v1/closed"]["get"]["security"] == [{"bearer": []}]


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_management_app().openapi()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items()]


def test_every_operation_states_its_access_in_the_document(doc: dict[str, Any]) -> None:
    roles = {r.role: r for r in REQUIREMENTS}
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for method, path, op in _operations(doc):
        requirement = roles[op["x-keyless-role"]]
        assert op["security"] == ([] if requirement.public else [{"bearer": []}]), (method, path)
        assert op["description"].endswith(f"**Access:** {requirement.sentence}"), (method, path)
        # POSTs that change nothing, so Readers may: a console login code is sealed, not stored; a leak
        # lookup is a read that carries its secrets in the body rather than the URL.
        changes = not path.endswith(("/console/login-codes", "/leaks/lookup"))
        if method != "get" and changes and "/secrets" not in path and "/deleted" not in path \
                and "/restore" not in path:
            assert requirement in (ADMIN, VAULT_DATA), f"{method} {path} writes with {requirement.role}"
        if method == "get" and "/vaults/{vault}/" not in path:
            assert requirement is READER, (method, path)


def test_errors_are_documented_as_sent_400_problem_never_422(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in _operations(doc):
        responses = op["responses"]
        assert "422" not in responses, (method, path)
        for status in ("400", "401", "403"):
            content = responses[status]["content"]
            assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_every_operation_has_a_summary_and_a_success_schema(doc: dict[str, Any]) -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    for rc in iter_route_contexts(create_management_app().routes):
        route = rc.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            assert route.summary, f"{rc.path_format}: written summary (not one FastAPI makes of the name)"
    for method, path, op in _operations(doc):
        success = [s for s in op["responses"] if s.startswith("2")]
        assert len(success) == 1, (method, path)
        if success[0] != "204":
            schema = op["responses"][success[0]]["content"]["application/json"]["schema"]
            assert "$ref" in schema or "$ref" in schema.get("items", {}) or schema.get("items", {}).get("type"), \
                (method, path, schema)
