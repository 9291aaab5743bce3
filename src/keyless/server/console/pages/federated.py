"""An application's federated credentials from the console: add, remove, and the dry run "would
this token be accepted, and why not" — through `ctx.federation` and the dry run the management API
uses (`keyless.server.federation_dryrun`), nothing consumed."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from keyless.domain.federation import KEYLESS_EXCHANGE_AUDIENCE
from keyless.server.console.access import ADMIN, Console, ConsoleRoute
from keyless.server.console.render import page
from keyless.server.federation_dryrun import dry_run


def _back(client_id: str) -> RedirectResponse:
    return RedirectResponse(f"/console/applications/{client_id}#federated", status_code=303)


async def add(c: Console) -> Response:
    client_id = c.request.path_params["client_id"]
    assert c.ctx.federation is not None
    owner = await c.ctx.federation.application(c.tenant, client_id)
    await c.ctx.federation.add(
        c.tenant, owner, actor=c.actor, name=c.field("name"), issuer=c.field("issuer"), subject=c.field("subject"),
        audiences=[c.field("audience") or KEYLESS_EXCHANGE_AUDIENCE],
        subject_is_pattern=c.field("subject_is_pattern") == "on", description=c.field("description"),
    )
    return _back(client_id)


async def remove(c: Console) -> Response:
    client_id, ref = c.request.path_params["client_id"], c.request.path_params["ref"]
    c.require_confirmation()
    assert c.ctx.federation is not None
    owner = await c.ctx.federation.application(c.tenant, client_id)
    await c.ctx.federation.remove(c.tenant, owner, ref, actor=c.actor)
    return _back(client_id)


async def test(c: Console) -> Response:
    """The dry run; the token itself is never shown back, only the claims that decide."""
    client_id = c.request.path_params["client_id"]
    assert c.ctx.federation is not None
    owner = await c.ctx.federation.application(c.tenant, client_id)
    app = await c.ctx.admin.application(c.tenant, client_id)
    verdict = await dry_run(c.ctx, c.tenant, owner, c.field("token"))
    return page(c, "federated_test.html", title=f"Would this token sign in as {app.display_name}?", app=app,
                verdict=verdict)


ROUTES = (
    ConsoleRoute("/applications/{client_id}/federated", add, ADMIN, methods=("POST",)),
    ConsoleRoute("/applications/{client_id}/federated/test", test, ADMIN, methods=("POST",)),
    ConsoleRoute("/applications/{client_id}/federated/{ref}/remove", remove, ADMIN, methods=("POST",)),
)
