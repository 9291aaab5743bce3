"""Liveness, readiness and metrics."""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from keyless.server.gauges import Gauges
from keyless.server.metrics import AUDIT_DROPPED, CHANGE_FEED_UP, CHANGE_NOTIFICATIONS, SIGNIN_DROPPED
from keyless.server.posture_metrics import gauges_for
from keyless.server.routes.common import ctx_of, json_response
from keyless.store.posture import SqlPostureStore


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    ctx = ctx_of(request)
    checks: dict[str, str] = {}
    try:
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["store"] = "ok"
    except Exception:
        checks["store"] = "unreachable"
    try:
        tenants = await ctx.store.list_tenants()
        for tenant in tenants:
            await ctx.keyring.signer(tenant.id)
        checks["signing_keys"] = "ok"
    except Exception:
        checks["signing_keys"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    if ctx.changes is not None and ctx.changes.state != "local":
        # Informational: a deaf replica still answers correctly (it clears its caches every second).
        checks["change_feed"] = "ok" if ctx.changes.state == "ok" else "down: caches cleared every second"
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)


async def metrics(request: Request) -> Response:
    ctx = ctx_of(request)
    await gauges_for(ctx.engine, SqlPostureStore(ctx.engine)).refresh(ctx.clock.now())
    SIGNIN_DROPPED.set(ctx.signins.dropped)
    AUDIT_DROPPED.set(ctx.audits.dropped)
    if ctx.changes is not None and ctx.changes.state != "local":
        CHANGE_FEED_UP.set(1 if ctx.changes.state == "ok" else 0)
        CHANGE_NOTIFICATIONS.labels("sent").set(ctx.changes.sent)
        CHANGE_NOTIFICATIONS.labels("received").set(ctx.changes.received)
    gauges = getattr(request.app.state, "gauges", None)
    if gauges is None:
        gauges = request.app.state.gauges = Gauges()
    try:
        await gauges.refresh(ctx)
    except Exception:  # a store hiccup must not take the metrics of everything else down with it
        logging.getLogger("keyless.metrics").warning("expiry gauges not refreshed", exc_info=True,
                                                     extra={"event": "gauges_failed"})
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
