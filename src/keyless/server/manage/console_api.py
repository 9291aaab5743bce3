"""`POST /{tenant}/manage/v1/console/login-codes`: a one-time sign-in code for the web console
(docs/console.md), bound to the calling credential and its management roles. Any management
caller may ask (a Reader gets a read-only console); the code is shown to the caller alone, lives
at most 60 seconds and is used once on every replica (`keyless.server.console.sessions`).

Issuing a code changes nothing (the code is sealed, not stored), so it writes no audit record; the
sign-in that redeems it does (`console.session.start`, naming the credential). The code carries the
id and kind of the credential the caller's token was issued for, so the session's records name it
as the management API's own records do (issue 20 item 3)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from keyless.directory.bootstrap import ADMIN_ROLE, READER_ROLE
from keyless.server.console.sessions import Binding, LoginCodes
from keyless.server.manage.deps import PREFIX, Reader, context_of
from keyless.server.manage.strict_json import StrictJsonRoute


class ConsoleCodeOut(BaseModel):
    url: str = Field(description="Open this in a browser: the code rides in the fragment, never sent in a request line")
    code: str = Field(description="The one-time code itself (what follows `#` in `url`)")
    expires_at: float = Field(description="Epoch seconds after which the code is refused")


router = APIRouter(prefix=PREFIX + "/console", tags=["console"], route_class=StrictJsonRoute)


@router.post("/login-codes", response_model=ConsoleCodeOut, status_code=201,
             summary="A one-time web console sign-in code for the caller (used once, within 60 s)")
async def issue_login_code(request: Request, caller: Reader) -> Response:
    ctx = context_of(request)
    roles = caller.roles & {ADMIN_ROLE, READER_ROLE}
    binding = Binding(tenant_id=caller.tenant.id, client_id=caller.client_id, object_id=caller.object_id,
                      roles=frozenset(roles), credential_id=caller.credential_id,
                      credential_type=caller.credential_type)
    code, expires_at = LoginCodes(ctx.kek, ctx.clock).issue(binding)
    out = ConsoleCodeOut(url=f"{ctx.base_url}/console/login#{code}", code=code, expires_at=expires_at)
    return Response(out.model_dump_json(), status_code=201, media_type="application/json",
                    headers={"Cache-Control": "no-store"})
