"""The overview page (what an operator looks at first) and sign-out."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import RedirectResponse, Response

from keyless.domain.credentials import Credential
from keyless.domain.ports import LogQuery
from keyless.domain.posture import RUNGS
from keyless.server.console.access import READER, SESSION, Console, ConsoleRoute
from keyless.server.console.pages.posture import service as posture_service
from keyless.server.console.render import page
from keyless.server.console.sessions import COOKIE, COOKIE_PATH

EXPIRING_WITHIN = 30 * 86400
SILENT_AFTER = 24 * 3600  # a host not heard from in a day is listed as silent


def last_seen(credentials: Sequence[Credential]) -> dict[str, float]:
    """When each host last authenticated: the latest use of any of its certificates (the agent signs
    in with one for every renewal and every token it fetches for its identities)."""
    seen: dict[str, float] = {}
    for cred in credentials:
        if cred.owner.kind == "host":
            seen[cred.owner.id] = max(seen.get(cred.owner.id, 0.0), cred.last_used_at or cred.created_at)
    return seen


async def overview(c: Console) -> Response:
    admin, now = c.ctx.admin, c.ctx.clock.now()
    apps = await admin.list_applications(c.tenant)
    credentials = await admin.credentials.inventory(c.tenant)
    score = await posture_service(c).score(c.tenant)  # the ladder as the posture report defines it
    expiring = [x for x in credentials if x.expires_within(now, EXPIRING_WITHIN)]
    failures = await admin.signins(LogQuery(tenant_id=c.tenant.id, result="failure", limit=10))
    seen = last_seen(credentials)
    silent = [h for h in await c.ctx.hosts.list_hosts(c.tenant) if now - seen.get(h.id, 0.0) > SILENT_AFTER] \
        if c.ctx.hosts is not None else []
    names = {a.client_id: a.display_name for a in apps}
    return page(c, "overview.html", title="Overview", score=score, rungs=(*RUNGS, "none"),
                expiring=sorted(expiring, key=lambda x: x.expires_at or 0), failures=failures, names=names,
                silent=silent, seen=seen)


async def sign_out(c: Console) -> Response:
    """Ends the session in the database, so every replica refuses its cookie from now on."""
    await c.request.app.state.sessions.end(c.session)
    response = RedirectResponse("/console/login?signed_out=1", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict")
    return response


ROUTES = (
    ConsoleRoute("/", overview, READER),
    ConsoleRoute("/logout", sign_out, SESSION, methods=("POST",)),
)
