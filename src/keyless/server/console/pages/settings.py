"""Tenant-wide pages: signing keys (rotate), tenant settings, hosts and managed identities."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from keyless.directory.errors import Invalid
from keyless.directory.validation import duration
from keyless.oauth.keyring import key_states
from keyless.server.console.access import ADMIN, READER, Console, ConsoleRoute
from keyless.server.console.pages.overview import last_seen
from keyless.server.console.render import page


async def keys(c: Console) -> Response:
    found = await c.ctx.admin.keys(c.tenant)
    states = key_states(found, c.ctx.clock.now())
    return page(c, "keys.html", title="Signing keys", keys=[(k, states[k.kid]) for k in found])


async def rotate_key(c: Console) -> Response:
    alg = c.field("alg") or c.tenant.signing_alg
    if alg not in ("RS256", "ES256"):
        raise Invalid("invalid_alg", "the algorithm must be RS256 or ES256")
    c.require_confirmation()
    await c.ctx.admin.rotate_key(c.tenant, actor=c.actor, alg=alg)
    return RedirectResponse("/console/keys", status_code=303)


async def tenant(c: Console) -> Response:
    return page(c, "tenant.html", title="Tenant settings", issuer=c.ctx.issuer(c.tenant))


def _duration(c: Console, name: str) -> int | None:
    return duration(c.field(name)) if c.field(name) else None


async def update_tenant(c: Console) -> Response:
    await c.ctx.admin.update_tenant(
        c.tenant, actor=c.actor, token_lifetime=_duration(c, "token_lifetime"),
        default_secret_lifetime=_duration(c, "default_secret_lifetime"),
        max_secret_lifetime=_duration(c, "max_secret_lifetime"), signing_alg=c.field("signing_alg") or None,
        assertion_audience=c.field("assertion_audience") or None,
    )
    return RedirectResponse("/console/tenant", status_code=303)


async def hosts(c: Console) -> Response:
    service = c.ctx.hosts
    if service is None:
        return page(c, "hosts.html", title="Hosts and identities", hosts=[], identities=[], bindings=[], seen={},
                    valid_until={})
    credentials = await c.ctx.admin.credentials.inventory(c.tenant)
    valid_until: dict[str, float] = {}  # the agent renews its certificate well before this
    for cred in credentials:
        if cred.owner.kind == "host" and cred.expires_at is not None:
            valid_until[cred.owner.id] = max(valid_until.get(cred.owner.id, 0.0), cred.expires_at)
    return page(c, "hosts.html", title="Hosts and identities", hosts=await service.list_hosts(c.tenant),
                identities=await service.list_identities(c.tenant), valid_until=valid_until,
                bindings=await service.list_bindings(c.tenant), seen=last_seen(credentials))


ROUTES = (
    ConsoleRoute("/keys", keys, READER),
    ConsoleRoute("/keys/rotate", rotate_key, ADMIN, methods=("POST",)),
    ConsoleRoute("/tenant", tenant, READER),
    ConsoleRoute("/tenant", update_tenant, ADMIN, methods=("POST",)),
    ConsoleRoute("/hosts", hosts, READER),
)
