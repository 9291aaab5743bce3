"""Credential policies in the console (docs/policies.md): the tenant default, each application's
override, and replacing either with a JSON document — through `ctx.admin.policies`, the service
`PUT /policy` and `PUT /applications/{id}/policy` use, which checks the document strictly and audits
the change with the session's credential; and the dry run (`keyless policy test`, shared with the
API in `keyless.server.policy_dryrun`), which writes nothing."""

from __future__ import annotations

import json

from starlette.responses import RedirectResponse, Response

from keyless.directory.errors import Invalid
from keyless.domain.policies import Policy
from keyless.domain.policy_document import policy_to_json
from keyless.server.console.access import ADMIN, READER, Console, ConsoleRoute
from keyless.server.console.render import page
from keyless.server.policy_dryrun import policy_dry_run
from keyless.server.reaping_dryrun import reaping_dry_run

MAX_DOCUMENT = 64 * 1024
TEST_DAYS = 30  # the dry run looks at this many days of successful sign-ins …
MAX_SIGNINS = 1000  # … at most this many, newest first (as `POST /policy/test`)


def _pretty(policy: Policy) -> str:
    return json.dumps(policy_to_json(policy), indent=2, sort_keys=True)


async def policies(c: Console) -> Response:
    stored = await c.ctx.admin.policies.all_stored(c.tenant)
    apps = {a.client_id: a for a in await c.ctx.admin.list_applications(c.tenant)}
    overrides = sorted(((apps[cid], _pretty(p)) for cid, p in stored.items() if cid is not None and cid in apps),
                       key=lambda item: item[0].display_name.lower())
    return page(c, "policies.html", title="Credential policies", tenant_policy=_pretty(stored.get(None) or Policy()),
                overrides=overrides, apps=sorted(apps.values(), key=lambda a: a.display_name.lower()))


def _document(c: Console) -> object:
    text = c.field("document")
    if len(text) > MAX_DOCUMENT:
        raise Invalid("invalid_policy", "a policy document is at most 64 KiB")
    try:
        return json.loads(text or "{}")
    except ValueError:
        raise Invalid("invalid_policy", "the policy is not valid JSON") from None


async def set_policy(c: Console) -> Response:
    document = _document(c)
    c.require_confirmation()
    client_id = c.field("client_id") or None
    if client_id is not None:
        client_id = (await c.ctx.admin.application(c.tenant, client_id)).client_id
    await c.ctx.admin.policies.set_policy(c.tenant, client_id, document, actor=c.actor)
    return RedirectResponse("/console/policies", status_code=303)


async def test_policy(c: Console) -> Response:
    """The dry run `keyless policy test` makes: nothing is written."""
    document, client_id = _document(c), c.field("client_id") or None
    creds, signs = await policy_dry_run(c.ctx, c.tenant, document, client_id=client_id, days=TEST_DAYS,
                                        max_signins=MAX_SIGNINS)
    reaps = await reaping_dry_run(c.ctx, c.tenant, document, client_id=client_id)
    names = {a.client_id: a.display_name for a in await c.ctx.admin.list_applications(c.tenant)}
    return page(c, "policy_test.html", title="Policy dry run", credentials=creds, signins=signs, reaping=reaps,
                names=names, days=TEST_DAYS, document=c.field("document"))


ROUTES = (
    ConsoleRoute("/policies", policies, READER),
    ConsoleRoute("/policies", set_policy, ADMIN, methods=("POST",)),
    ConsoleRoute("/policies/test", test_policy, ADMIN, methods=("POST",)),
)
