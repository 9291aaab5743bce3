"""Background work the server does on one replica at a time, under a lease (`keyless.store.leases`)."""

from __future__ import annotations

import asyncio
import logging
import uuid

from keyless.directory.key_schedule import rotate_due_keys
from keyless.server.context import ServerContext
from keyless.store.failures import SqlFailureLedger
from keyless.store.leases import SqlLeases

log = logging.getLogger("keyless.server")
KEY_ROTATION_LEASE = "signing-key-rotation"


async def key_rotation_loop(ctx: ServerContext) -> None:
    """Every `key_rotation_check` seconds, the replica holding the lease rotates the keys that are due.
    The lease lasts three checks, so a replica that dies hands over within that time."""
    interval, every = ctx.settings.key_rotation_interval, ctx.settings.key_rotation_check
    leases, holder = SqlLeases(ctx.engine, ctx.clock), uuid.uuid4().hex
    try:
        while True:
            try:
                if await leases.acquire(KEY_ROTATION_LEASE, holder, every * 3):
                    tenants = await ctx.store.list_tenants()
                    for key in await rotate_due_keys(ctx.admin, tenants, interval=interval, now=ctx.clock.now()):
                        log.info("signing key rotated on schedule", extra={
                            "event": "key_rotated", "tenant_id": key.tenant_id, "kid": key.kid,
                            "activates_at": key.activates_at})
            except Exception:
                log.exception("scheduled key rotation failed", extra={"event": "key_rotation_failed"})
            await asyncio.sleep(every)
    finally:
        try:
            await asyncio.shield(leases.release(KEY_ROTATION_LEASE, holder))
        except Exception:  # stopping anyway: the lease expires by itself
            log.warning("could not release the key-rotation lease", extra={"event": "lease_release_failed"})


async def failure_sweep_loop(ctx: ServerContext, every: float = 300.0) -> None:
    """Delete shared failure buckets that have been idle long enough to be full again (PostgreSQL)."""
    settings = ctx.settings
    budgets = (settings.source_failure_burst / settings.source_failure_rate,
               settings.client_failure_burst / settings.client_failure_rate,
               settings.source_client_budget().burst / settings.source_client_budget().per_second)
    ledger = SqlFailureLedger(ctx.engine, ctx.clock)
    while True:
        await asyncio.sleep(every)
        try:
            await ledger.sweep(idle_for=max(budgets) + 60)
        except Exception:
            log.exception("failure bucket sweep failed", extra={"event": "failure_sweep_failed"})
