"""`GET /{tenant}/manage/v1/posture`: the posture report (docs/api.md, "Posture"; docs/ladder.md).

Reader access: the report names credentials by id and hint only, never a secret value (catalog O14),
and changes nothing. Paged in client-id order by the API's one convention (`limit`, `cursor`, `Link`,
docs/api.md "Paging"), with the cursor also in the body's `next_cursor`; the tenant score comes
with the first page.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from keyless.directory.posture import Entry, PostureService
from keyless.domain.posture import RISKS, RUNGS, AssessedCredential, Score, Shares
from keyless.gc_pause import gc_paused
from keyless.server.context import ServerContext
from keyless.server.manage.deps import PREFIX, Reader
from keyless.server.manage.paging import ReportPaging
from keyless.server.manage.strict_json import StrictJsonRoute

router = APIRouter(prefix=PREFIX, route_class=StrictJsonRoute)
MAX_SOURCES = 10  # addresses shown per workload and credential (the count is always complete)


class SharesOut(BaseModel):
    total: int
    counts: dict[str, int]
    shares: dict[str, float]

    @classmethod
    def of(cls, s: Shares) -> SharesOut:
        return cls(total=s.total, counts=dict(s.counts), shares={k: round(v, 4) for k, v in s.shares.items()})


class ScoreOut(BaseModel):
    window_days: int
    index: int  # 0 (every workload on secrets) .. 100 (every workload a managed identity)
    signins: SharesOut  # successful sign-ins in the window, by the rung of the credential used
    workloads: SharesOut  # workloads by rung
    without_credentials: int  # applications with no working credential (resource APIs, retired apps)

    @classmethod
    def of(cls, s: Score) -> ScoreOut:
        return cls(window_days=s.window_days, index=s.index, signins=SharesOut.of(s.signins),
                   workloads=SharesOut.of(s.workloads), without_credentials=s.without_credentials)


class StepOut(BaseModel):
    summary: str
    commands: list[str]
    guide: str


class RiskOut(BaseModel):
    risk: str
    message: str
    credential_id: str | None
    fix: list[str]  # commands of this risk's own fix; empty when `by_next_step`
    by_next_step: bool  # the workload's next step is the fix (its commands are not repeated here)


class PostureCredentialOut(BaseModel):
    id: str
    kind: str
    display_name: str
    label: str  # a secret's hint, a certificate's x5t#S256, a federated credential's issuer and subject
    state: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    signins: int
    sources: list[str]
    from_internal_ca: bool | None



class WorkloadOut(BaseModel):
    client_id: str
    display_name: str
    kind: str  # application | identity
    identity_kind: str | None
    rung: str
    hosts: list[str]
    signins: int
    sources: list[str]
    agent_hosts: list[str]
    last_signin_at: float | None
    credentials: list[PostureCredentialOut]
    risks: list[RiskOut]
    next_step: StepOut | None



def _credential(c: AssessedCredential, now: float) -> dict[str, Any]:
    cred = c.credential
    return {"id": cred.id, "kind": cred.kind, "display_name": cred.display_name, "label": cred.label,
            "state": cred.state(now), "created_at": cred.created_at, "expires_at": cred.expires_at,
            "last_used_at": max(cred.last_used_at or 0.0, c.usage.last_at or 0.0) or None,
            "signins": c.usage.signins, "sources": c.usage.sources[:MAX_SOURCES],
            "from_internal_ca": c.from_internal_ca}


def workload_json(e: Entry, now: float) -> dict[str, Any]:
    """One `WorkloadOut` as plain JSON data. Built directly rather than through the models: a report of
    20,000 workloads is ~100,000 objects, and model validation cost more than the queries
    (docs/benchmarks.md, "Posture"); the models stay the documented schema, which the authorization
    matrix validates every answer against. Sequences stay tuples: orjson writes them as arrays."""
    a, w, step = e.assessment, e.assessment.workload, e.next_step
    return {
        "client_id": w.client_id, "display_name": w.display_name, "kind": w.kind, "identity_kind": w.identity_kind,
        "rung": a.rung, "hosts": w.hosts, "signins": w.signins, "sources": w.sources[:MAX_SOURCES],
        "agent_hosts": a.agent_hosts, "last_signin_at": w.last_signin_at,
        "credentials": [_credential(c, now) for c in w.credentials],
        "risks": [{"risk": f.risk, "message": f.message, "credential_id": f.credential_id,
                   "by_next_step": step is not None and cmds is step.commands,
                   "fix": () if step is not None and cmds is step.commands else cmds} for f, cmds in e.fixes],
        "next_step": None if step is None else {"summary": step.summary, "commands": step.commands,
                                                "guide": step.guide},
    }


class RiskNameOut(BaseModel):
    risk: str


class StepSummaryOut(BaseModel):
    summary: str


class WorkloadSummaryOut(BaseModel):
    """A workload in `view=summary`: what `keyless posture`'s table shows, a tenth of the full answer."""
    client_id: str
    display_name: str
    kind: str
    rung: str
    risks: list[RiskNameOut]
    next_step: StepSummaryOut | None


def workload_summary_json(e: Entry) -> dict[str, Any]:
    a, w, step = e.assessment, e.assessment.workload, e.next_step
    return {"client_id": w.client_id, "display_name": w.display_name, "kind": w.kind, "rung": a.rung,
            "risks": [{"risk": f.risk} for f in a.findings],
            "next_step": None if step is None else {"summary": step.summary}}


class PostureOut(BaseModel):
    score: ScoreOut | None  # on the first page only (no cursor)
    workloads: list[WorkloadOut] | list[WorkloadSummaryOut]  # the second with `view=summary`
    next_cursor: str | None  # pass as ?cursor= for the next page; null on the last page


def posture_of(request: Request) -> tuple[ServerContext, PostureService]:
    ctx: ServerContext = request.app.state.ctx
    return ctx, ctx.posture_service()


_RUNG = f"^({'|'.join(RUNGS)}|none)$"
_RISK = f"^({'|'.join(RISKS)})$"


@router.get("/posture", response_model=PostureOut,
            summary="Each workload's rung on the credential ladder, its risk factors and next step; the tenant score")
async def posture(
    request: Request, response: Response, caller: Reader, page: ReportPaging,
    client_id: Annotated[str | None, Query(max_length=64, description="Only this application or identity")] = None,
    rung: Annotated[str | None, Query(pattern=_RUNG, description="Only workloads on this rung")] = None,
    risk: Annotated[str | None, Query(pattern=_RISK, description="Only workloads with this risk factor")] = None,
    view: Annotated[str, Query(pattern="^(full|summary)$", description="`summary`: each workload's name, kind, "
                               "rung, risk names and next step's summary only")] = "full",
) -> Response:
    ctx, service = posture_of(request)
    after_key = page.after((str,))
    after = str(after_key[0]) if after_key is not None else None
    key = (caller.tenant.id, after, page.limit, client_id, rung, risk, view)
    kept = service.answers.get(key)  # the same page asked for again, no write since (directory.answers)
    if kept is not None:
        return Response(kept[0], media_type="application/json", headers=None if kept[1] is None else {"Link": kept[1]})
    generation = service.answers.generation
    with contextlib.suppress(Exception):  # a store hiccup must not hide what is already written
        await ctx.signins.flush()  # the sign-ins of the last half second count too
    with gc_paused():  # a page is ~50,000 short-lived objects without cycles (keyless.gc_pause)
        report = await service.report(caller.tenant, after=after, limit=page.limit, client_id=client_id,
                                      rung=rung, risk=risk, ca_pem=ctx.ca().cert_pem, commands=view != "summary")
        score = await service.score(caller.tenant) if after is None else None
        now = ctx.clock.now()
        cursor = page.next_after(None if report.next_after is None else (report.next_after,))
        body = {"score": None if score is None else ScoreOut.of(score).model_dump(),
                "workloads": [workload_summary_json(e) for e in report.entries] if view == "summary"
                else [workload_json(e, now) for e in report.entries], "next_cursor": cursor}
        encoded = orjson.dumps(body)
    link = response.headers.get("link")  # set by `page`
    service.answers.put(key, (encoded, link), generation)
    return Response(encoded, media_type="application/json", headers=None if link is None else {"Link": link})
