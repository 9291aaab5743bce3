"""Credential policies in the console (docs/policies.md): the tenant default, each application's
override, and replacing either with a JSON document — through `ctx.admin.policies`, the service
`PUT /policy` and `PUT /applications/{id}/policy` use, which checks the document strictly and audits
the change with the session's credential. The dry run (`keyless policy test`) stays on the CLI and
the API."""

from __future__ import annotations

import json

from starlette.responses import RedirectResponse, Response

from keyless.directory.errors import Invalid
from keyless.domain.policies import Policy
from keyless.domain.policy_document import policy_to_json
from keyless.server.console.access import ADMIN, READER, Console, ConsoleRoute
from keyless.server.console.render import page

MAX_DOCUMENT = 64 * 1024


def _pretty(policy: Policy) -> str:
    return json.dumps(policy_to_json(policy), indent=2, sort_keys=True)


async def policies(c: Console) -> Response:
    stored = await c.ctx.admin.policies.all_stored(c.tenant)
    apps = {a.client_id: a for a in await c.ctx.admin.list_applications(c.tenant)}
    overrides = sorted(((apps[cid], _pretty(p)) for cid, p in stored.items() if cid is not None and cid in apps),
                       key=lambda item: item[0].display_name.lower())
    return page(c, "policies.html", title="Credential policies", tenant_policy=_pretty(stored.get(None) or Policy()),
                overrides=overrides, apps=sorted(apps.values(), key=lambda a: a.display_name.lower()))


async def set_policy(c: Console) -> Response:
    text = c.field("document")
    if len(text) > MAX_DOCUMENT:
        raise Invalid("invalid_policy", "a policy document is at most 64 KiB")
    try:
        document = json.loads(text or "{}")
    except ValueError:
        raise Invalid("invalid_policy", "the policy is not valid JSON") from None
    c.require_confirmation()
    client_id = c.field("client_id") or None
    if client_id is not None:
        client_id = (await c.ctx.admin.application(c.tenant, client_id)).client_id
    await c.ctx.admin.policies.set_policy(c.tenant, client_id, document, actor=c.actor)
    return RedirectResponse("/console/policies", status_code=303)


ROUTES = (
    ConsoleRoute("/policies", policies, READER),
    ConsoleRoute("/policies", set_policy, ADMIN, methods=("POST",)),
)
