"""Applications: search and paging, detail (credentials, roles, grants, federated credentials,
recent sign-ins), create, and adding an app role — through `ctx.admin`, as the management API does."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from keyless.directory.errors import DirectoryError
from keyless.domain.credentials import Owner
from keyless.domain.ports import LogQuery
from keyless.server.console.access import ADMIN, READER, Console, ConsoleRoute
from keyless.server.console.render import page

PAGE_SIZE = 25


def _page_number(c: Console) -> int:
    raw = c.query("page", "1")
    return max(1, min(int(raw), 10_000)) if raw.isdigit() else 1


async def list_applications(c: Console) -> Response:
    q = c.query("q")
    apps = sorted(await c.ctx.admin.list_applications(c.tenant), key=lambda a: (a.display_name.lower(), a.client_id))
    if q:
        needle = q.lower()
        apps = [a for a in apps if needle in a.display_name.lower() or needle in a.client_id
                or needle in (a.identifier_uri or "").lower()]
    number = _page_number(c)
    pages = max(1, -(-len(apps) // PAGE_SIZE))
    number = min(number, pages)
    shown = apps[(number - 1) * PAGE_SIZE: number * PAGE_SIZE]
    return page(c, "applications.html", title="Applications", apps=shown, q=q, page_number=number, pages=pages,
                total=len(apps))


async def new_application(c: Console) -> Response:
    return page(c, "application_new.html", title="New application", form={})


async def create_application(c: Console) -> Response:
    roles = [r.strip() for r in c.field("roles").split(",") if r.strip()]
    try:
        app = await c.ctx.admin.create_application(
            c.tenant, c.field("display_name"), actor=c.actor, identifier_uri=c.field("identifier_uri") or None,
            roles=roles, open_to_tenant=c.field("open_to_tenant") == "on",
        )
    except DirectoryError as exc:
        form = {k: c.field(k) for k in ("display_name", "identifier_uri", "roles")}
        return page(c, "application_new.html", status=exc.status, title="New application", form=form,
                    message=exc.message)
    return RedirectResponse(f"/console/applications/{app.client_id}?created=1", status_code=303)


async def application_detail(c: Console) -> Response:
    ctx, tenant = c.ctx, c.tenant
    client_id = c.request.path_params["client_id"]
    app = await ctx.admin.application(tenant, client_id)
    managed = app.managed_resource_id is not None
    secrets = [] if managed else await ctx.admin.list_secrets(tenant, client_id)
    certificates = [] if managed else await ctx.admin.list_certificates(tenant, client_id)
    federated = await ctx.federation.credentials(tenant, Owner("application", client_id)) \
        if ctx.federation is not None and not managed else []
    grants = await ctx.admin.list_grants(tenant, client_id=client_id, resource_client_id=None)
    granted_here = await ctx.admin.list_grants(tenant, client_id=None, resource_client_id=client_id) \
        if app.identifier_uri else []
    apps = {a.client_id: a for a in await ctx.admin.list_applications(tenant)}
    signins = await ctx.admin.signins(LogQuery(tenant_id=tenant.id, client_id=client_id, limit=20))
    resources = sorted((a for a in apps.values() if a.identifier_uri and a.roles), key=lambda a: a.display_name)
    return page(c, "application.html", title=app.display_name, app=app, secrets=secrets, certificates=certificates,
                federated=federated, grants=grants, granted_here=granted_here, apps=apps, signins=signins,
                resources=resources, managed=managed, created=c.query("created") == "1")


async def add_role(c: Console) -> Response:
    client_id = c.request.path_params["client_id"]
    await c.ctx.admin.add_role(c.tenant, client_id, c.field("value"), actor=c.actor)
    return RedirectResponse(f"/console/applications/{client_id}#roles", status_code=303)


ROUTES = (
    ConsoleRoute("/applications", list_applications, READER),
    ConsoleRoute("/applications/new", new_application, ADMIN),
    ConsoleRoute("/applications", create_application, ADMIN, methods=("POST",)),
    ConsoleRoute("/applications/{client_id}", application_detail, READER),
    ConsoleRoute("/applications/{client_id}/roles", add_role, ADMIN, methods=("POST",)),
)
