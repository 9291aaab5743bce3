"""Management API for leaked secrets (issue 14, docs/leaks.md), under `/{tenant}/manage/v1/leaks`.

`keyless scan` resolves what it found here. The secret travels only in a POST body over TLS (never in
a URL, so never in an access log) and the server reduces it to its keyed hash at once: the answer and
every record name the secret's id and hint, never its value (catalog O09).

- `POST /leaks/lookup` (Reader): the state of up to 100 presented strings, revoking nothing.
- `POST /leaks` (Admin): record where a secret was seen and revoke it if live; one audit record
  (`secret.leaked`, naming the location) per new report, none for a repeated one.
- `GET /leaks` (Reader): the recorded leaks, newest first (what the posture report shows).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from keyless.directory.errors import NotFound
from keyless.directory.leaks import MAX_LOOKUP, Lookup
from keyless.domain.leaks import MAX_LOCATION_LEN, MAX_SOURCE_LEN, Leak
from keyless.paging import Order
from keyless.server.manage.deps import PREFIX, Admin, Reader, context_of
from keyless.server.manage.paging import Paging
from keyless.server.manage.schemas import Strict
from keyless.server.manage.strict_json import StrictJsonRoute

router = APIRouter(prefix=PREFIX, route_class=StrictJsonRoute)
_PRESENTED = Annotated[str, Field(max_length=512)]
NEWEST_FIRST: Order[Leak] = Order(lambda x: (-x.reported_at, x.id), (float, str))  # docs/api.md, "Paging"


class LookupIn(Strict):
    secrets: list[_PRESENTED] = Field(max_length=MAX_LOOKUP, description="the strings the scanner found")


class LookupOut(BaseModel):
    hint: str
    status: str = Field(description="active | expired | revoked | unknown (not this tenant's) | not_a_secret")
    client_id: str | None = None
    display_name: str | None = None
    secret_id: str | None = None
    expires_at: float | None = None

    @classmethod
    def of(cls, x: Lookup) -> LookupOut:
        m = x.match
        if m is None:
            return cls(hint=x.hint, status=x.status)
        return cls(hint=x.hint, status=x.status, client_id=m.client_id, display_name=m.display_name,
                   secret_id=m.secret_id, expires_at=m.expires_at)


class LeakReport(Strict):
    secret: str = Field(max_length=512, description="the secret as found (sent over TLS, never stored)")
    location: str = Field(min_length=1, max_length=MAX_LOCATION_LEN, description="file:line, commit:file:line or URL")
    source: str = Field(default="scan", min_length=1, max_length=MAX_SOURCE_LEN)


class LeakOut(BaseModel):
    id: str
    client_id: str
    secret_id: str
    hint: str
    location: str
    source: str
    reporter: str
    reported_at: float
    status_before: str = Field(description="the secret's state when this location was first reported")
    revoked: bool = Field(description="this report revoked the secret")
    created: bool = Field(default=True, description="false: this location had been reported before")

    @classmethod
    def of(cls, x: Leak, created: bool = True) -> LeakOut:
        return cls(id=x.id, client_id=x.client_id, secret_id=x.secret_id, hint=x.hint, location=x.location,
                   source=x.source, reporter=x.reporter, reported_at=x.reported_at, status_before=x.status_before,
                   revoked=x.revoked, created=created)


@router.post("/leaks/lookup", response_model=list[LookupOut], summary="State of presented secrets (revokes nothing)")
async def lookup(request: Request, body: LookupIn, caller: Reader) -> list[LookupOut]:
    found = await context_of(request).admin.leaks.lookup(caller.tenant, body.secrets)
    return [LookupOut.of(x) for x in found]


@router.post("/leaks", response_model=LeakOut, summary="Report where a secret was seen; revoke it if live")
async def report(request: Request, body: LeakReport, caller: Admin) -> LeakOut:
    outcome = await context_of(request).admin.leaks.report(
        body.secret, tenant=caller.tenant, location=body.location, source=body.source, reporter=caller.actor,
    )
    if outcome is None:
        raise NotFound("secret_not_found", "no such secret in this tenant")
    leak, created = outcome
    return LeakOut.of(leak, created)


@router.get("/leaks", response_model=list[LeakOut], summary="Recorded leaks, newest first")
async def list_leaks(request: Request, caller: Reader, page: Paging,
                     client_id: Annotated[str | None, Query(max_length=64)] = None) -> list[LeakOut]:
    found = await context_of(request).admin.leaks.leaks(caller.tenant, client_id)
    return [LeakOut.of(x) for x in page.take(found, NEWEST_FIRST)]
