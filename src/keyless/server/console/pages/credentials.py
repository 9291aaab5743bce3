"""An application's credentials and grants from the console: add a client secret (shown once, as
the CLI shows it), revoke one, upload a certificate (the same gate as `keyless cert add`: a file
holding a private key is refused), revoke one, grant and remove roles, and federated credentials
(add, the dry-run test, remove). Each write goes through the service the management API calls,
with the session's credential as the audited actor; destructive ones need the confirm box."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from keyless.directory.errors import Invalid
from keyless.directory.validation import duration
from keyless.server.console.access import ADMIN, Console, ConsoleRoute
from keyless.server.console.render import page

MAX_CERTIFICATE_BYTES = 64 * 1024


def _back(client_id: str, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"/console/applications/{client_id}#{anchor}", status_code=303)


async def add_secret(c: Console) -> Response:
    client_id = c.request.path_params["client_id"]
    expires = c.field("expires_in")
    record, plaintext = await c.ctx.admin.add_secret(
        c.tenant, client_id, actor=c.actor, expires_in=duration(expires) if expires else None,
        display_name=c.field("display_name"),
    )
    app = await c.ctx.admin.application(c.tenant, client_id)
    # The one time the value exists outside the caller's memory: this response (no-store), never again.
    return page(c, "secret_created.html", status=201, title="Secret created", app=app, record=record,
                secret=plaintext)


async def revoke_secret(c: Console) -> Response:
    client_id, secret_id = c.request.path_params["client_id"], c.request.path_params["secret_id"]
    c.require_confirmation()
    await c.ctx.admin.revoke_secret(c.tenant, client_id, secret_id, actor=c.actor)
    return _back(client_id, "secrets")


async def add_certificate(c: Console) -> Response:
    client_id = c.request.path_params["client_id"]
    upload = c.form.get("certificate") if c.form is not None else None
    data = b""
    if isinstance(upload, UploadFile):
        data = await upload.read(MAX_CERTIFICATE_BYTES + 1)
    if not data:
        data = c.field("pem").encode("ascii", "replace")
    if not data.strip():
        raise Invalid("not_a_certificate", "choose a certificate file (PEM or DER) or paste a PEM certificate")
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise Invalid("not_a_certificate", "a certificate file is at most 64 KiB")
    await c.ctx.admin.add_certificate(c.tenant, client_id, data, actor=c.actor, display_name=c.field("display_name"))
    return _back(client_id, "certificates")


async def revoke_certificate(c: Console) -> Response:
    client_id, cert_id = c.request.path_params["client_id"], c.request.path_params["certificate_id"]
    c.require_confirmation()
    await c.ctx.admin.revoke_certificate(c.tenant, client_id, cert_id, actor=c.actor)
    return _back(client_id, "certificates")


async def add_grant(c: Console) -> Response:
    client_id = c.request.path_params["client_id"]
    await c.ctx.admin.grant(c.tenant, client_id, c.field("resource"), c.field("role"), actor=c.actor)
    return _back(client_id, "grants")


async def remove_grant(c: Console) -> Response:
    client_id, grant_id = c.request.path_params["client_id"], c.request.path_params["grant_id"]
    c.require_confirmation()
    await c.ctx.admin.revoke_grant(c.tenant, grant_id, actor=c.actor)
    return _back(client_id, "grants")


ROUTES = (
    ConsoleRoute("/applications/{client_id}/secrets", add_secret, ADMIN, methods=("POST",)),
    ConsoleRoute("/applications/{client_id}/secrets/{secret_id}/revoke", revoke_secret, ADMIN, methods=("POST",)),
    ConsoleRoute("/applications/{client_id}/certificates", add_certificate, ADMIN, methods=("POST",)),
    ConsoleRoute("/applications/{client_id}/certificates/{certificate_id}/revoke", revoke_certificate, ADMIN,
                 methods=("POST",)),
    ConsoleRoute("/applications/{client_id}/grants", add_grant, ADMIN, methods=("POST",)),
    ConsoleRoute("/applications/{client_id}/grants/{grant_id}/remove", remove_grant, ADMIN, methods=("POST",)),
)
