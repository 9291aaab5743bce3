"""Management API routes under `/{tenant}/manage/v1`. Reads need Keyless.Reader or Keyless.Admin,
writes need Keyless.Admin; every write is audited with the caller's client id."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import uuid
from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from keyless.directory.errors import DirectoryError
from keyless.directory.errors import Invalid as DirectoryInvalid
from keyless.domain.model import Application, AuditEvent, SignInEvent
from keyless.domain.ports import LogQuery
from keyless.oauth.keyring import key_states
from keyless.paging import BY_CREATED, InvalidCursor, Order
from keyless.server.context import ServerContext
from keyless.server.manage import console_api, docs, openapi, posture_api
from keyless.server.manage import federation as federation_api
from keyless.server.manage import schemas as s
from keyless.server.manage.auth import AuthProblem, Caller
from keyless.server.manage.deps import PREFIX, Admin, Reader, context_of
from keyless.server.manage.hosts_api import router as hosts_router
from keyless.server.manage.inventory_api import router as inventory_router
from keyless.server.manage.leaks_api import router as leaks_router
from keyless.server.manage.paging import Page, Paging
from keyless.server.manage.policies_api import router as policies_router
from keyless.server.manage.problems import problem
from keyless.server.manage.strict_json import StrictJsonRoute
from keyless.server.manage.vault_api import router as vault_router
from keyless.server.manage.webhooks_api import router as webhooks_router
from keyless.vault.errors import VaultError

_ctx = context_of
router = APIRouter(prefix=PREFIX, route_class=StrictJsonRoute)

# The order of each list (docs/api.md, "Paging"): creation time, then the id that breaks ties.
BY_APP: Order[Application] = Order(lambda a: (a.created_at, a.client_id), (float, str))
BY_ACTIVATION: Order[s.KeyOut] = Order(lambda k: (k.activates_at, k.kid), (float, str))
NEWEST_FIRST = (int,)  # the logs: the row's sequence number, descending


@router.get("/tenant", response_model=s.TenantOut, summary="Show the tenant's settings")
async def get_tenant(request: Request, caller: Reader) -> s.TenantOut:
    ctx = _ctx(request)
    return s.TenantOut.of(caller.tenant, ctx.issuer(caller.tenant))


@router.patch("/tenant", response_model=s.TenantOut, summary="Change token lifetime, signing algorithm, limits")
async def patch_tenant(request: Request, body: s.TenantPatch, caller: Admin) -> s.TenantOut:
    ctx = _ctx(request)
    t = await ctx.admin.update_tenant(caller.tenant, actor=caller.actor, **body.model_dump(exclude_none=True))
    return s.TenantOut.of(t, ctx.issuer(t))


@router.get("/applications", response_model=list[s.ApplicationOut], summary="List, or find by ?ref=")
async def list_applications(
    request: Request, caller: Reader, page: Paging, ref: Annotated[str | None, Query(max_length=512)] = None
) -> list[s.ApplicationOut]:
    ctx = _ctx(request)
    if ref is not None:
        return [s.ApplicationOut.of(await ctx.admin.resolve_application(caller.tenant, ref))]
    after = page.after(BY_APP.shape)  # the store pages: 20,000 applications are never all loaded for one page
    apps = await ctx.admin.list_applications(caller.tenant, limit=page.limit + 1,
                                             after=None if after is None else (float(after[0]), str(after[1])))
    return [s.ApplicationOut.of(a) for a in page.cut(apps, BY_APP.key)]


@router.post("/applications", response_model=s.ApplicationOut, status_code=201, summary="Register an application")
async def create_application(request: Request, body: s.ApplicationCreate, caller: Admin) -> s.ApplicationOut:
    app = await _ctx(request).admin.create_application(
        caller.tenant, body.display_name, actor=caller.actor, identifier_uri=body.identifier_uri,
        roles=body.roles, open_to_tenant=body.open_to_tenant,
    )
    return s.ApplicationOut.of(app)


@router.get("/applications/{client_id}", response_model=s.ApplicationOut, summary="Show an application")
async def get_application(request: Request, client_id: str, caller: Reader) -> s.ApplicationOut:
    return s.ApplicationOut.of(await _ctx(request).admin.application(caller.tenant, client_id))


@router.patch("/applications/{client_id}", response_model=s.ApplicationOut, summary="Rename, enable, disable")
async def patch_application(
    request: Request, client_id: str, body: s.ApplicationPatch, caller: Admin
) -> s.ApplicationOut:
    app = await _ctx(request).admin.update_application(
        caller.tenant, client_id, actor=caller.actor, **body.model_dump(exclude_none=True)
    )
    return s.ApplicationOut.of(app)


@router.delete("/applications/{client_id}", status_code=204,
                summary="Delete an application, its credentials and grants")
async def delete_application(request: Request, client_id: str, caller: Admin) -> Response:
    await _ctx(request).admin.delete_application(caller.tenant, client_id, actor=caller.actor)
    return Response(status_code=204)


@router.post("/applications/{client_id}/roles", response_model=s.RoleOut, status_code=201,
             summary="Add an app role other applications can be granted")
async def add_role(request: Request, client_id: str, body: s.RoleCreate, caller: Admin) -> s.RoleOut:
    role = await _ctx(request).admin.add_role(caller.tenant, client_id, body.value, actor=caller.actor)
    return s.RoleOut(id=role.id, value=role.value, enabled=role.enabled)


@router.get("/applications/{client_id}/secrets", response_model=list[s.SecretOut],
            summary="List an application's client secrets (never their values)")
async def list_secrets(request: Request, client_id: str, caller: Reader, page: Paging) -> list[s.SecretOut]:
    found = await _ctx(request).admin.list_secrets(caller.tenant, client_id)
    return [s.SecretOut.of(x) for x in page.take(found, BY_CREATED)]


@router.post("/applications/{client_id}/secrets", response_model=s.SecretCreated, status_code=201,
             summary="Create a client secret (returned once)")
async def add_secret(request: Request, client_id: str, body: s.SecretCreate, caller: Admin) -> Response:
    record, plaintext = await _ctx(request).admin.add_secret(
        caller.tenant, client_id, actor=caller.actor, expires_in=body.expires_in,
        display_name=body.display_name,
    )
    out = s.SecretCreated(**s.SecretOut.of(record).model_dump(), secret=plaintext)
    return Response(out.model_dump_json(), status_code=201, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


@router.delete("/applications/{client_id}/secrets/{secret_id}", status_code=204,
                summary="Revoke a client secret at once")
async def revoke_secret(request: Request, client_id: str, secret_id: str, caller: Admin) -> Response:
    await _ctx(request).admin.revoke_secret(caller.tenant, client_id, secret_id, actor=caller.actor)
    return Response(status_code=204)


def _certificate_bytes(text: str) -> bytes:
    """PEM as sent, or base64 of the DER (JSON cannot carry raw bytes)."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        return stripped.encode("ascii", "replace")
    try:
        return base64.b64decode("".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        raise DirectoryInvalid("not_a_certificate", "send the certificate as PEM or as base64 of its DER") from None


@router.get("/applications/{client_id}/certificates", response_model=list[s.CertificateOut],
            summary="List an application's certificate credentials")
async def list_certificates(request: Request, client_id: str, caller: Reader, page: Paging) -> list[s.CertificateOut]:
    certs = await _ctx(request).admin.list_certificates(caller.tenant, client_id)
    return [s.CertificateOut.of(c) for c in page.take(certs, BY_CREATED)]


@router.post("/applications/{client_id}/certificates", response_model=s.CertificateOut, status_code=201,
             summary="Register a certificate credential (the certificate only, never a key)")
async def add_certificate(
    request: Request, client_id: str, body: s.CertificateUpload, caller: Admin
) -> s.CertificateOut:
    cert = await _ctx(request).admin.add_certificate(
        caller.tenant, client_id, _certificate_bytes(body.certificate), actor=caller.actor,
        display_name=body.display_name,
    )
    return s.CertificateOut.of(cert)


@router.delete("/applications/{client_id}/certificates/{certificate_id}", status_code=204,
                summary="Revoke a certificate credential at once")
async def revoke_certificate(request: Request, client_id: str, certificate_id: str, caller: Admin) -> Response:
    await _ctx(request).admin.revoke_certificate(caller.tenant, client_id, certificate_id, actor=caller.actor)
    return Response(status_code=204)


@router.get("/ca", response_model=s.CaOut, summary="The local CA certificate (PEM)")
async def show_ca(request: Request, caller: Reader) -> s.CaOut:
    return s.CaOut(certificate=_ctx(request).ca().cert_pem.decode("ascii"))


@router.post("/ca/sign", response_model=s.CertificateIssued, status_code=201,
             summary="Issue a client certificate from a CSR and register it on the application")
async def sign_csr(request: Request, body: s.CertificateSign, caller: Admin) -> s.CertificateIssued:
    ctx = _ctx(request)
    cert, pem = await ctx.admin.issue_certificate(
        caller.tenant, body.client_id, body.csr.encode("ascii", "replace"), actor=caller.actor,
        ca=ctx.ca(), days=body.days, display_name=body.display_name,
    )
    return s.CertificateIssued(**s.CertificateOut.of(cert).model_dump(), certificate=pem.decode("ascii"))


@router.get("/grants", response_model=list[s.GrantOut],
            summary="List role grants, by client (?client_id=) or resource (?resource=)")
async def list_grants(
    request: Request, caller: Reader, page: Paging, client_id: str | None = None, resource: str | None = None
) -> list[s.GrantOut]:
    ctx = _ctx(request)
    resource_id = None
    if resource is not None:
        resource_id = (await ctx.admin.resolve_application(caller.tenant, resource)).client_id
    grants = await ctx.admin.list_grants(caller.tenant, client_id=client_id, resource_client_id=resource_id)
    return [s.GrantOut.of(g) for g in page.take(grants, BY_CREATED)]


@router.post("/grants", response_model=s.GrantOut, status_code=201, summary="Grant a client a role on a resource")
async def add_grant(request: Request, body: s.GrantCreate, caller: Admin) -> s.GrantOut:
    g = await _ctx(request).admin.grant(caller.tenant, body.client_id, body.resource, body.role,
                                        actor=caller.actor)
    return s.GrantOut.of(g)


@router.delete("/grants/{grant_id}", status_code=204, summary="Remove a role grant")
async def remove_grant(request: Request, grant_id: str, caller: Admin) -> Response:
    await _ctx(request).admin.revoke_grant(caller.tenant, grant_id, actor=caller.actor)
    return Response(status_code=204)


async def _key_list(ctx: ServerContext, caller: Caller) -> list[s.KeyOut]:
    keys = await ctx.admin.keys(caller.tenant)
    states = key_states(keys, ctx.clock.now())
    return [s.KeyOut.of(k, states[k.kid]) for k in keys]


@router.get("/keys", response_model=list[s.KeyOut], summary="Signing keys and their rotation state")
async def list_keys(request: Request, caller: Reader, page: Paging) -> list[s.KeyOut]:
    return page.take(await _key_list(_ctx(request), caller), BY_ACTIVATION)


@router.post("/keys/rotate", response_model=s.KeyOut, status_code=201,
             summary="Publish a new signing key now; it signs after activate_in seconds")
async def rotate_key(request: Request, body: s.KeyRotate, caller: Admin) -> s.KeyOut:
    ctx = _ctx(request)
    kwargs: dict[str, object] = {}
    if body.activate_in is not None:
        kwargs["activate_in"] = body.activate_in
    key = await ctx.admin.rotate_key(caller.tenant, actor=caller.actor, alg=body.alg, **kwargs)  # type: ignore[arg-type]
    return next(k for k in await _key_list(ctx, caller) if k.kid == key.kid)


@router.post("/keys/{kid}/retire", status_code=204, summary="Remove a key from the JWKS at once")
async def retire_key(request: Request, kid: str, caller: Admin) -> Response:
    await _ctx(request).admin.retire_key(caller.tenant, kid, actor=caller.actor)
    return Response(status_code=204)


def _query(caller: Caller, client_id: str | None, result: str | None, action: str | None,
           since: float | None, until: float | None, page: Page) -> LogQuery:
    after = page.after(NEWEST_FIRST)
    return LogQuery(tenant_id=caller.tenant.id, client_id=client_id, result=result, action=action,
                    since=since, until=until, limit=page.limit + 1,
                    before_seq=None if after is None else -int(after[0]))


def _newest_first(event: SignInEvent | AuditEvent) -> tuple[int]:
    return (-(event.seq or 0),)


@router.get("/logs/signins", response_model=list[s.SignInOut], summary="Sign-in log, newest first")
async def signins(
    request: Request, caller: Reader, page: Paging, client_id: str | None = None,
    result: Annotated[str | None, Query(pattern="^(success|failure)$")] = None,
    since: float | None = None, until: float | None = None,
) -> list[s.SignInOut]:
    ctx = _ctx(request)
    with contextlib.suppress(Exception):  # a store hiccup must not hide what is already written
        await ctx.signins.flush()
    q = _query(caller, client_id, result, None, since, until, page)
    return [s.SignInOut.of(e) for e in page.cut(await ctx.admin.signins(q), _newest_first)]


@router.get("/logs/audit", response_model=list[s.AuditOut], summary="Audit log of directory changes, newest first")
async def audit(
    request: Request, caller: Reader, page: Paging, client_id: str | None = None, action: str | None = None,
    since: float | None = None, until: float | None = None,
) -> list[s.AuditOut]:
    ctx = _ctx(request)
    with contextlib.suppress(Exception):  # vault reads are audited in batches; show what is recorded
        await ctx.audits.flush()
    q = _query(caller, client_id, None, action, since, until, page)
    return [s.AuditOut.of(e) for e in page.cut(await ctx.admin.audit(q), _newest_first)]


def create_management_app() -> FastAPI:
    app = FastAPI(
        title="Keyless management API", version="1", openapi_url="/manage/openapi.json", docs_url=None,
        redoc_url=None,
    )
    app.include_router(router)
    app.include_router(vault_router)
    app.include_router(hosts_router)
    app.include_router(federation_api.router)
    app.include_router(policies_router)
    app.include_router(posture_api.router)
    app.include_router(leaks_router)
    app.include_router(console_api.router)
    app.include_router(webhooks_router)
    app.include_router(inventory_router)
    docs.install(app)
    openapi.install(app)  # refuses to build if an operation declares no access

    @app.exception_handler(DirectoryError)
    async def directory_error(request: Request, exc: DirectoryError) -> Response:
        return problem(exc.status, exc.code, exc.title, exc.message)

    @app.exception_handler(VaultError)
    async def vault_error(request: Request, exc: VaultError) -> Response:
        return problem(exc.status, exc.problem, HTTPStatus(exc.status).phrase, exc.message)

    @app.exception_handler(InvalidCursor)
    async def cursor_error(request: Request, exc: InvalidCursor) -> Response:
        return problem(400, exc.code, "Invalid request", str(exc))

    @app.exception_handler(AuthProblem)
    async def auth_error(request: Request, exc: AuthProblem) -> Response:
        title = "Unauthorized" if exc.status == 401 else "Forbidden"
        return problem(exc.status, exc.code, title, exc.detail, headers={"WWW-Authenticate": exc.challenge})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = {404: "no such resource", 405: "method not allowed on this resource"}.get(
            exc.status_code, "request refused"
        )
        return problem(exc.status_code, code, HTTPStatus(exc.status_code).phrase, detail,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        correlation = uuid.uuid4().hex
        logging.getLogger("keyless.manage").error(
            "unhandled error", exc_info=exc, extra={"event": "server_error", "correlation_id": correlation}
        )
        return problem(500, "internal_error", "Internal error", "the server failed; the log has details",
                       correlation_id=correlation)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
        return problem(400, "validation_failed", "Invalid request", "the request body or query is invalid",
                       errors=errors)

    return app
