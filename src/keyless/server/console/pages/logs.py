"""The sign-in and audit logs with filters (credential, result or action, time window), newest
first, read through the same log service as `GET /manage/v1/logs/*`."""

from __future__ import annotations

import calendar
import contextlib
import time

from starlette.responses import Response

from keyless.domain.ports import LogQuery
from keyless.server.console.access import READER, Console, ConsoleRoute
from keyless.server.console.render import page

LIMITS = (25, 100, 500)


def _instant(text: str) -> float | None:
    """`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (a browser's date/datetime-local input), read as UTC."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        with contextlib.suppress(ValueError):
            return float(calendar.timegm(time.strptime(text, fmt)))
    return None


def _query(c: Console, **extra: str | None) -> tuple[LogQuery, dict[str, str]]:
    filters = {k: c.query(k) for k in ("client_id", "since", "until", "limit", *extra)}
    limit = int(filters["limit"]) if filters["limit"].isdigit() and int(filters["limit"]) in LIMITS else 100
    filters["limit"] = str(limit)
    q = LogQuery(tenant_id=c.tenant.id, client_id=filters["client_id"] or None,
                 since=_instant(filters["since"]), until=_instant(filters["until"]), limit=limit,
                 result=filters.get("result") or None, action=filters.get("action") or None)
    return q, filters


async def signins(c: Console) -> Response:
    q, filters = _query(c, result=None)
    if filters["result"] not in ("", "success", "failure"):
        filters["result"] = ""
        q = LogQuery(**{**q.__dict__, "result": None})
    with contextlib.suppress(Exception):  # a store hiccup must not hide what is already written
        await c.ctx.signins.flush()
    return page(c, "signins.html", title="Sign-in log", events=await c.ctx.admin.signins(q), filters=filters,
                limits=LIMITS)


async def audit(c: Console) -> Response:
    q, filters = _query(c, action=None)
    with contextlib.suppress(Exception):  # vault reads are audited in batches; show what is recorded
        await c.ctx.audits.flush()
    return page(c, "audit.html", title="Audit log", events=await c.ctx.admin.audit(q), filters=filters, limits=LIMITS)


ROUTES = (
    ConsoleRoute("/logs/signins", signins, READER),
    ConsoleRoute("/logs/audit", audit, READER),
)
