"""The credential inventory (issue 13 item 2; docs/api.md, "Credential inventory"): every credential
of every owner kind with its kind, owner, lifetime, last use and the address of that use, and state;
filtered and paged. Never secret material: a secret's hint at most (catalog O14)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from keyless.domain.credentials import Credential, Owner
from keyless.paging import BY_CREATED
from keyless.server.manage.deps import PREFIX, Reader, context_of
from keyless.server.manage.paging import Paging
from keyless.server.manage.strict_json import StrictJsonRoute
from keyless.server.owners import owner_names

router = APIRouter(prefix=PREFIX, route_class=StrictJsonRoute)


class CredentialOut(BaseModel):
    id: str
    kind: str  # secret | certificate | federated
    owner_kind: str  # application | identity | host
    owner_id: str
    owner_name: str | None
    display_name: str
    label: str  # a secret's hint, a certificate's x5t#S256, a federated credential's issuer and subject
    state: str  # active | not_yet_valid | expired
    created_at: float
    not_before: float | None
    expires_at: float | None
    last_used_at: float | None
    last_used_from: str | None

    @classmethod
    def of(cls, c: Credential, now: float, names: dict[str, str]) -> CredentialOut:
        return cls(id=c.id, kind=c.kind, owner_kind=c.owner.kind, owner_id=c.owner.id,
                   owner_name=names.get(c.owner.id), display_name=c.display_name, label=c.label,
                   state=c.state(now), created_at=c.created_at, not_before=c.not_before, expires_at=c.expires_at,
                   last_used_at=c.last_used_at, last_used_from=c.last_used_from)


@router.get("/credentials", response_model=list[CredentialOut],
            summary="Every credential of every owner, oldest first: expiry, last use and its source, state")
async def list_credentials(
    request: Request, caller: Reader, page: Paging,
    kind: Annotated[Literal["secret", "certificate", "federated"] | None, Query()] = None,
    owner_kind: Annotated[Literal["application", "identity", "host"] | None, Query()] = None,
    owner: Annotated[str | None, Query(max_length=64, description="one owner's id (with owner_kind)")] = None,
    state: Annotated[Literal["active", "not_yet_valid", "expired"] | None, Query()] = None,
    expiring_within: Annotated[int | None, Query(ge=0, le=10 * 365 * 86400,
                                                 description="active, expiring within this many seconds")] = None,
    unused_for: Annotated[int | None, Query(ge=0, le=10 * 365 * 86400, description="no sign-in for this many "
                                            "seconds (never used: made at least that long ago)")] = None,
) -> list[CredentialOut]:
    ctx = context_of(request)
    found = await ctx.admin.credentials.inventory(
        caller.tenant, owner=Owner(owner_kind, owner) if owner and owner_kind else None,
        expiring_within=expiring_within, unused_for=unused_for, kind=kind,
        owner_kind=owner_kind, state=state)
    if owner and not owner_kind:
        found = [c for c in found if c.owner.id == owner]
    now, names = ctx.clock.now(), await owner_names(ctx, caller.tenant)
    return [CredentialOut.of(c, now, names) for c in page.take(found, BY_CREATED)]
