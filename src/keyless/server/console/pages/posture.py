"""The posture report in the console (issue 13's report, docs/ladder.md): the tenant score, each
workload's rung on the credential ladder, its risk factors and next step — from the same
`PostureService` the management API's `GET /posture` uses. Hints only, never a secret value (O14)."""

from __future__ import annotations

import contextlib

from starlette.responses import Response

from keyless.directory.posture import PostureService
from keyless.domain.posture import RISKS, RUNGS
from keyless.server.console.access import READER, Console, ConsoleRoute
from keyless.server.console.render import page

PAGE = 50


def service(c: Console) -> PostureService:
    return c.ctx.posture_service()  # the process's one: its sign-in facts are shared with the API


async def posture(c: Console) -> Response:
    rung = c.query("rung") if c.query("rung") in (*RUNGS, "none") else ""
    risk = c.query("risk") if c.query("risk") in RISKS else ""
    after = c.query("after") or None
    with contextlib.suppress(Exception):  # the sign-ins of the last half second count too
        await c.ctx.signins.flush()
    posture = service(c)
    report = await posture.report(c.tenant, after=after, limit=PAGE, rung=rung or None, risk=risk or None,
                                  ca_pem=c.ctx.ca().cert_pem)
    score = await posture.score(c.tenant)
    return page(c, "posture.html", title="Posture", score=score, entries=report.entries, next_after=report.next_after,
                rung=rung, risk=risk, rungs=(*RUNGS, "none"), risks=RISKS)


ROUTES = (ConsoleRoute("/posture", posture, READER),)
