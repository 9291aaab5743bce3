"""The sign-in page and the exchange of a one-time login code for a session (docs/console.md).

`keyless console` opens `/console/login#CODE`. The fragment never leaves the browser in a request
line or a `Referer`; `static/login.js` moves it into the form and posts it, and the server answers
with the session cookie (`HttpOnly`, `Secure`, `SameSite=Strict`, path `/console`). Without
JavaScript the code can be pasted into the same form.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from keyless.server.console.access import same_origin, signed_in_with_live
from keyless.server.console.render import page
from keyless.server.console.sessions import (
    ABSOLUTE_TIMEOUT,
    COOKIE,
    COOKIE_PATH,
    ONE_TIME_KIND,
    LoginCodes,
    LoginRefused,
    Sessions,
)
from keyless.server.context import ServerContext

REFUSED = ("This sign-in code is not valid: it has expired (codes last 60 seconds), was used already, "
           "or was mistyped. Run `keyless console` again for a new one.")


async def login_page(request: Request) -> Response:
    return page(None, "login.html", title="Sign in")


async def login_submit(request: Request) -> Response:
    ctx: ServerContext = request.app.state.ctx
    sessions: Sessions = request.app.state.sessions
    if not same_origin(request):
        return page(None, "login.html", status=403, title="Sign in",
                    message="Refused: the sign-in form was not sent from this console.")
    form = await request.form()
    code = form.get("code")
    try:
        binding, nonce, expires = LoginCodes(ctx.kek, ctx.clock).open(code.strip() if isinstance(code, str) else "")
        if not await ctx.store.consume(ONE_TIME_KIND, binding.tenant_id, nonce, expires):
            raise LoginRefused("the sign-in code was used already")
        tenant = await ctx.directory.get_tenant(binding.tenant_id)
        client = await ctx.directory.get_client(binding.tenant_id, binding.client_id) if tenant else None
        if tenant is None or client is None or not client.app.enabled or \
                not signed_in_with_live(client, binding.credential_id, binding.credential_type, ctx.clock.now()):
            raise LoginRefused("the credential the code was issued to is gone, disabled or revoked")
    except LoginRefused:
        return page(None, "login.html", status=401, title="Sign in", message=REFUSED)
    cookie, _ = await sessions.start(binding)
    response = RedirectResponse("/console/", status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=ABSOLUTE_TIMEOUT, path=COOKIE_PATH, secure=True, httponly=True,
                        samesite="strict")
    return response
