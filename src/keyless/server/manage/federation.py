"""Management API for federated identity credentials: add, list, remove, test a token, lint, on
applications (`/applications/{client_id}/…`) and user-assigned identities (`/identities/{ref}/…`,
ref = name, client id, object id or resource id); and outbound identity-token audiences of
applications and managed identities of either kind.

`test` runs the token endpoint's own checks (`federated.examine`, the one policy function, E09)
without consuming anything and explains the outcome per credential: which one matched, or exactly
which check failed where. It needs Keyless.Admin, since it makes the server fetch issuer metadata.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from keyless.directory.errors import Invalid
from keyless.directory.federation import FederationService
from keyless.domain.credentials import Owner
from keyless.domain.federation import (
    DEFAULT_ALGORITHMS,
    DEFAULT_MAX_TOKEN_LIFETIME,
    KEYLESS_EXCHANGE_AUDIENCE,
    FederatedCredential,
)
from keyless.oauth.client_auth.private_key_jwt import MAX_ASSERTION
from keyless.oauth.federation import rules
from keyless.paging import BY_CREATED, Order
from keyless.server.federation_dryrun import dry_run
from keyless.server.manage.auth import Caller
from keyless.server.manage.deps import PREFIX, Admin, Reader, context_of
from keyless.server.manage.paging import Page, Paging
from keyless.server.manage.schemas import Strict
from keyless.server.manage.strict_json import StrictJsonRoute

router = APIRouter(prefix=PREFIX, route_class=StrictJsonRoute)
_ctx = context_of


def _service(request: Request) -> FederationService:
    service = _ctx(request).federation
    assert service is not None
    return service


OwnerPath = Annotated[Literal["applications", "identities"], Path()]


class FederatedCredentialCreate(Strict):
    name: str = Field(max_length=120)
    issuer: str = Field(max_length=512)
    subject: str = Field(max_length=512)
    subject_is_pattern: bool = False
    audiences: list[str] = Field(default_factory=lambda: [KEYLESS_EXCHANGE_AUDIENCE], max_length=1, min_length=1)
    claims: dict[str, str] = Field(default_factory=dict)
    algorithms: list[str] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS), max_length=9)
    replay: str = "reuse"
    max_token_lifetime: int = DEFAULT_MAX_TOKEN_LIFETIME
    description: str = Field(default="", max_length=512)


class FederatedCredentialOut(BaseModel):
    id: str
    owner_type: str
    owner_id: str
    client_id: str | None
    name: str
    issuer: str
    subject: str
    subject_is_pattern: bool
    audiences: list[str]
    claims: dict[str, str]
    algorithms: list[str]
    replay: str
    max_token_lifetime: int
    description: str
    created_at: float

    @classmethod
    def of(cls, c: FederatedCredential) -> FederatedCredentialOut:
        return cls(
            id=c.id, owner_type=c.owner_type, owner_id=c.owner_id,
            client_id=c.owner_id, name=c.name, issuer=c.issuer,
            subject=c.subject, subject_is_pattern=c.subject_is_pattern, audiences=[c.audience],
            claims=dict(c.claims), algorithms=list(c.algorithms), replay=c.replay,
            max_token_lifetime=c.max_token_lifetime, description=c.description, created_at=c.created_at,
        )


class TokenTest(Strict):
    token: str = Field(max_length=MAX_ASSERTION)


class CredentialVerdict(BaseModel):
    id: str
    name: str
    issuer: str
    subject: str
    audience: str
    result: str = Field(description="match, issuer differs, not evaluated: …, or the failed check and why")
    passed: list[str]


class TokenTestOut(BaseModel):
    result: str = Field(description="match or no_match")
    client_id: str
    matched: str | None
    failed_check: str | None
    explanation: str
    issuer_fetch_error: str | None
    application_enabled: bool | None
    replay: str | None
    token: dict[str, Any] = Field(description="the claims that decide a sign-in; never the signature")
    credentials: list[CredentialVerdict]


class LintFindingOut(BaseModel):
    credential_id: str
    client_id: str
    owner_type: str
    name: str
    severity: str
    code: str
    message: str


BY_FINDING: Order[LintFindingOut] = Order(lambda f: (f.credential_id, f.code, f.message), (str, str, str))
BY_VALUE: Order[str] = Order(lambda v: (v,), (str,))


async def _application(request: Request, client_id: str, caller: Caller) -> Owner:
    return await _service(request).application(caller.tenant, client_id)


async def _identity(request: Request, ref: str, caller: Caller) -> Owner:
    return await _service(request).identity(caller.tenant, ref)


async def _list(request: Request, owner: Owner, caller: Caller, page: Page) -> list[FederatedCredentialOut]:
    found = await _service(request).credentials(caller.tenant, owner)
    return [FederatedCredentialOut.of(c) for c in page.take(found, BY_CREATED)]


async def _add(request: Request, owner: Owner, body: FederatedCredentialCreate, caller: Caller
               ) -> FederatedCredentialOut:
    credential = await _service(request).add(
        caller.tenant, owner, actor=caller.actor, name=body.name, issuer=body.issuer,
        subject=body.subject, audiences=body.audiences, subject_is_pattern=body.subject_is_pattern,
        claims=body.claims, algorithms=body.algorithms, replay=body.replay,
        max_token_lifetime=body.max_token_lifetime, description=body.description,
    )
    return FederatedCredentialOut.of(credential)


@router.get("/applications/{client_id}/federated-credentials", response_model=list[FederatedCredentialOut],
            summary="List an application's federated identity credentials")
async def list_credentials(request: Request, client_id: str, caller: Reader, page: Paging
                           ) -> list[FederatedCredentialOut]:
    return await _list(request, await _application(request, client_id, caller), caller, page)


@router.get("/identities/{ref}/federated-credentials", response_model=list[FederatedCredentialOut],
            summary="List a user-assigned identity's federated identity credentials")
async def list_identity_credentials(request: Request, ref: str, caller: Reader, page: Paging
                                    ) -> list[FederatedCredentialOut]:
    return await _list(request, await _identity(request, ref, caller), caller, page)


@router.post("/applications/{client_id}/federated-credentials", response_model=FederatedCredentialOut,
             status_code=201, summary="Trust tokens of an external issuer for one subject")
async def add_credential(
    request: Request, client_id: str, body: FederatedCredentialCreate, caller: Admin
) -> FederatedCredentialOut:
    return await _add(request, await _application(request, client_id, caller), body, caller)


@router.post("/identities/{ref}/federated-credentials", response_model=FederatedCredentialOut,
             status_code=201, summary="Trust tokens of an external issuer as a user-assigned identity")
async def add_identity_credential(
    request: Request, ref: str, body: FederatedCredentialCreate, caller: Admin
) -> FederatedCredentialOut:
    return await _add(request, await _identity(request, ref, caller), body, caller)


@router.delete("/applications/{client_id}/federated-credentials/{ref}", status_code=204,
               summary="Remove a federated credential (by id or name)")
async def remove_credential(request: Request, client_id: str, ref: str, caller: Admin) -> Response:
    owner = await _application(request, client_id, caller)
    await _service(request).remove(caller.tenant, owner, ref, actor=caller.actor)
    return Response(status_code=204)


@router.delete("/identities/{identity}/federated-credentials/{ref}", status_code=204,
               summary="Remove a user-assigned identity's federated credential (by id or name)")
async def remove_identity_credential(request: Request, identity: str, ref: str, caller: Admin) -> Response:
    owner = await _identity(request, identity, caller)
    await _service(request).remove(caller.tenant, owner, ref, actor=caller.actor)
    return Response(status_code=204)


@router.get("/federated-credentials/lint", response_model=list[LintFindingOut],
            summary="Federated credentials that trust more than one repository or namespace, and other risks")
async def lint(request: Request, caller: Reader, page: Paging, client_id: str | None = None,
               identity: Annotated[str | None, Query(max_length=512)] = None) -> list[LintFindingOut]:
    service = _service(request)
    if client_id is not None and identity is not None:
        raise Invalid("invalid_request", "give client_id or identity, not both")
    if client_id is not None:
        credentials = list(await service.credentials(caller.tenant, await _application(request, client_id, caller)))
    elif identity is not None:
        credentials = list(await service.credentials(caller.tenant, await _identity(request, identity, caller)))
    else:
        credentials = list(await service.list_all(caller.tenant))
    findings = [LintFindingOut(credential_id=f.credential_id, client_id=f.owner_id, owner_type=f.owner_type,
                               name=f.name, severity=f.severity, code=f.code, message=f.message)
                for f in rules.lint(credentials)]
    return page.take(findings, BY_FINDING)


async def _test(request: Request, owner: Owner, token: str, caller: Caller) -> dict[str, Any]:
    return await dry_run(_ctx(request), caller.tenant, owner, token)


@router.post("/applications/{client_id}/federated-credentials/test", response_model=TokenTestOut,
             summary="Explain whether a token would sign in")
async def test_token(request: Request, client_id: str, body: TokenTest, caller: Admin) -> dict[str, Any]:
    return await _test(request, await _application(request, client_id, caller), body.token, caller)


@router.post("/identities/{ref}/federated-credentials/test", response_model=TokenTestOut,
             summary="Explain whether a token would sign in as a user-assigned identity")
async def test_identity_token(request: Request, ref: str, body: TokenTest, caller: Admin) -> dict[str, Any]:
    return await _test(request, await _identity(request, ref, caller), body.token, caller)


class AudienceIn(Strict):
    audience: str = Field(max_length=512)


async def _outbound(request: Request, kind: str, ref: str, caller: Caller) -> Owner:
    if kind == "applications":
        return await _application(request, ref, caller)
    return await _service(request).identity(caller.tenant, ref, user_assigned=False)


@router.get("/{kind}/{ref}/identity-token-audiences", response_model=list[str],
            summary="Audiences an application or managed identity may get an outbound identity token for")
async def list_audiences(request: Request, kind: OwnerPath, ref: str, caller: Reader, page: Paging) -> list[str]:
    owner = await _outbound(request, kind, ref, caller)
    return page.take(await _service(request).identity_token_audiences(caller.tenant, owner), BY_VALUE)


@router.post("/{kind}/{ref}/identity-token-audiences", response_model=list[str], status_code=201,
             summary="Allow an outbound identity token audience (idempotent)")
async def allow_audience(request: Request, kind: OwnerPath, ref: str, body: AudienceIn, caller: Admin) -> list[str]:
    service = _service(request)
    owner = await _outbound(request, kind, ref, caller)
    await service.allow_identity_token_audience(caller.tenant, owner, body.audience, actor=caller.actor)
    return sorted(await service.identity_token_audiences(caller.tenant, owner))


@router.delete("/{kind}/{ref}/identity-token-audiences", status_code=204,
               summary="Stop issuing identity tokens for an audience")
async def disallow_audience(request: Request, kind: OwnerPath, ref: str, audience: str, caller: Admin) -> Response:
    owner = await _outbound(request, kind, ref, caller)
    await _service(request).disallow_identity_token_audience(caller.tenant, owner, audience, actor=caller.actor)
    return Response(status_code=204)
