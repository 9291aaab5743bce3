"""Management API for credential policies (docs/policies.md) under `/{tenant}/manage/v1`.

Reading a policy needs Keyless.Reader; setting the tenant default or an application's override needs
Keyless.Admin, whether it tightens or loosens the rules (catalog O06). The dry run writes nothing but
needs Keyless.Admin too, like the federated-credential test: it is the tool of whoever may change a
policy, and it lists every credential's weaknesses at once. A `PUT` replaces
the whole document: `{}` clears every rule at that level.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from keyless.directory.policies import PolicyFinding
from keyless.directory.reaping import installation_rule
from keyless.domain.model import Tenant
from keyless.domain.policies import Policy
from keyless.domain.policy_document import policy_to_json
from keyless.server.context import ServerContext
from keyless.server.manage.deps import PREFIX, Admin, Reader, context_of
from keyless.server.manage.schemas import Strict
from keyless.server.manage.strict_json import StrictJsonRoute
from keyless.server.policy_dryrun import policy_dry_run
from keyless.server.reaping_dryrun import reaping_dry_run

router = APIRouter(prefix=PREFIX, route_class=StrictJsonRoute)

ModeT = Literal["off", "audit", "enforce"]
Seconds = Annotated[int | None, Field(ge=60, le=100 * 365 * 86400)]
Strings = Annotated[list[Annotated[str, Field(min_length=1, max_length=512)]], Field(max_length=100)]
MAX_SIGNINS = 1000  # the most recent successful sign-ins a dry run looks at


class BlockSecretsDoc(Strict):
    mode: ModeT
    allowed_apps: Strings = Field(default_factory=list, description="client ids still allowed new secrets")


class MaxLifetimeDoc(Strict):
    mode: ModeT
    secret: Seconds = Field(default=None, description="longest secret lifetime, seconds")
    certificate: Seconds = Field(default=None, description="longest certificate validity, seconds")


class KeySpecDoc(Strict):
    type: Literal["RSA", "EC", "Ed25519"]
    min_size: int = Field(default=0, ge=0, le=16384, description="bits: RSA modulus, EC curve (256 = P-256)")


class KeyTypesDoc(Strict):
    mode: ModeT
    allowed: Annotated[list[KeySpecDoc], Field(max_length=100)] = Field(default_factory=list)


class InternalCaDoc(Strict):
    mode: ModeT


class FederationDoc(Strict):
    mode: ModeT
    issuers: Strings = Field(default_factory=list, description="allowed issuers (empty: any)")
    max_token_lifetime: Seconds = None


class AudienceModeDoc(Strict):
    mode: ModeT
    required: Literal["entra", "strict"] = "strict"


class SourceNetworksDoc(Strict):
    mode: ModeT
    networks: Strings = Field(default_factory=list, description="IPv4/IPv6 CIDRs, e.g. 10.20.0.0/16")


class ReapingDoc(Strict):
    mode: ModeT
    unused_days: Annotated[int | None, Field(ge=8, le=3650)] = Field(
        default=None, description="disable secrets and certificates unused this many days (warned 7 days before)")
    delete_after_days: Annotated[int | None, Field(ge=1, le=3650)] = Field(
        default=None, description="delete disabled secrets and certificates this many days after")


class PolicyDoc(Strict):
    """A policy document: each rule present is in force at its mode (`off` in an override exempts)."""

    block_secrets: BlockSecretsDoc | None = None
    max_lifetime: MaxLifetimeDoc | None = None
    key_types: KeyTypesDoc | None = None
    internal_ca: InternalCaDoc | None = None
    federation: FederationDoc | None = None
    audience_mode: AudienceModeDoc | None = None
    source_networks: SourceNetworksDoc | None = None
    reaping: ReapingDoc | None = None

    @classmethod
    def of(cls, policy: Policy) -> PolicyDoc:
        return cls.model_validate(policy_to_json(policy))


class TenantPolicyOut(BaseModel):
    policy: PolicyDoc
    installation: dict[str, object] | None = Field(
        default=None, description="rules the installation's settings apply where no policy sets them: the "
        "deprecated KEYLESS_REAP_* as an enforce-mode reaping rule (absent when unset)")


class AppPolicyOut(BaseModel):
    client_id: str
    override: PolicyDoc | None = None  # absent: the application has no override
    effective: PolicyDoc


class PolicyTestIn(Strict):
    policy: PolicyDoc
    client_id: str | None = Field(default=None, max_length=64,
                                  description="test the policy as this application's override (default: tenant)")
    days: int = Field(default=30, ge=1, le=90, description="how far back to look at sign-ins")


class FindingOut(BaseModel):
    owner: str
    credential_id: str
    rule: str
    mode: str
    reason: str
    message: str
    refused: bool
    time: float | None = None
    source: str | None = None

    @classmethod
    def of(cls, f: PolicyFinding) -> FindingOut:
        v = f.violation
        return cls(owner=f.owner, credential_id=v.credential_id, rule=v.rule, mode=v.mode, reason=v.reason,
                   message=v.message, refused=v.enforced, time=f.time, source=f.source)


class PolicyTestOut(BaseModel):
    credentials: list[FindingOut]
    signins: list[FindingOut]
    refused_credentials: int
    refused_signins: int
    reaping: list[FindingOut] = Field(default_factory=list, description="what the reaping rule would disable "
                                      "or delete now (enforce) or only report (audit)")
    reaped: int = Field(default=0, description="how many of those the scan would disable or delete (enforce)")


def _doc(body: PolicyDoc) -> dict[str, object]:
    return body.model_dump(exclude_none=True)


@router.get("/policy", response_model=TenantPolicyOut,
            response_model_exclude_none=True, summary="Show the tenant's default credential policy")
async def get_policy(request: Request, caller: Reader) -> TenantPolicyOut:
    ctx = context_of(request)
    stored = await ctx.admin.policies.stored(caller.tenant, None)
    default = installation_rule(ctx.settings.reap_unused_days, ctx.settings.reap_delete_after_days)
    return TenantPolicyOut(policy=PolicyDoc.of(stored or Policy()),
                           installation=None if default is None else policy_to_json(Policy(reaping=default)))


@router.put("/policy", response_model=TenantPolicyOut,
            response_model_exclude_none=True, summary="Replace the tenant's default credential policy")
async def put_policy(request: Request, body: PolicyDoc, caller: Admin) -> TenantPolicyOut:
    policy = await context_of(request).admin.policies.set_policy(caller.tenant, None, _doc(body),
                                                                 actor=caller.actor)
    return TenantPolicyOut(policy=PolicyDoc.of(policy))


async def _app_policy(ctx: ServerContext, tenant: Tenant, client_id: str) -> AppPolicyOut:
    policies = ctx.admin.policies
    own = await policies.stored(tenant, client_id)
    return AppPolicyOut(client_id=client_id, override=PolicyDoc.of(own) if own is not None else None,
                        effective=PolicyDoc.of(await policies.effective(tenant, client_id)))


@router.get("/applications/{client_id}/policy", response_model=AppPolicyOut,
            response_model_exclude_none=True,
            summary="Show an application's policy override and the policy in effect for it")
async def get_app_policy(request: Request, client_id: str, caller: Reader) -> AppPolicyOut:
    ctx = context_of(request)
    app = await ctx.admin.application(caller.tenant, client_id)
    return await _app_policy(ctx, caller.tenant, app.client_id)


@router.put("/applications/{client_id}/policy", response_model=AppPolicyOut,
            response_model_exclude_none=True,
            summary="Replace an application's policy override (a rule set here replaces the tenant's)")
async def put_app_policy(request: Request, client_id: str, body: PolicyDoc, caller: Admin) -> AppPolicyOut:
    ctx = context_of(request)
    app = await ctx.admin.application(caller.tenant, client_id)
    await ctx.admin.policies.set_policy(caller.tenant, app.client_id, _doc(body), actor=caller.actor)
    return await _app_policy(ctx, caller.tenant, app.client_id)


@router.post("/policy/test", response_model=PolicyTestOut,
            response_model_exclude_none=True,
             summary="Dry run: what a candidate policy would refuse among credentials and recent sign-ins")
async def dry_run(request: Request, body: PolicyTestIn, caller: Admin) -> PolicyTestOut:
    ctx, doc = context_of(request), _doc(body.policy)
    creds, signs = await policy_dry_run(ctx, caller.tenant, doc, client_id=body.client_id, days=body.days,
                                        max_signins=MAX_SIGNINS)
    reaps = await reaping_dry_run(ctx, caller.tenant, doc, client_id=body.client_id)
    return PolicyTestOut(credentials=[FindingOut.of(f) for f in creds], signins=[FindingOut.of(f) for f in signs],
                         refused_credentials=sum(f.violation.enforced for f in creds),
                         refused_signins=sum(f.violation.enforced for f in signs),
                         reaping=[FindingOut.of(f) for f in reaps], reaped=sum(f.violation.enforced for f in reaps))

