"""Background work the server does on one replica at a time, under a lease (`keyless.store.leases`)."""

from __future__ import annotations

import asyncio
import logging
import uuid

from keyless.directory.key_schedule import rotate_due_keys
from keyless.directory.notices import DAY, NoticeRules, forgettable, notices, silent_agents
from keyless.directory.reaping import Reaper, installation_rule, plan, rule_for, shortest_deletion
from keyless.domain.events import Event
from keyless.domain.model import Tenant
from keyless.domain.policies import Reaping
from keyless.server.context import ServerContext
from keyless.server.owners import owner_names
from keyless.store.failures import SqlFailureLedger
from keyless.store.leases import SqlLeases

log = logging.getLogger("keyless.server")
KEY_ROTATION_LEASE = "signing-key-rotation"
NOTICE_SCAN_LEASE = "notification-scan"


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


async def scan_tenant(ctx: ServerContext, tenant: Tenant, rules: NoticeRules,
                      reaping: Reaping | None = None) -> int:
    """Emit the notices due for every credential of `tenant` (deduplicated: a notice already sent is
    not sent again) and apply the tenant's reaping rules (`reaping`: the installation's deprecated
    default where no policy sets one); returns how many notices were new."""
    now = ctx.clock.now()
    names = await owner_names(ctx, tenant)
    credentials = await ctx.store.credentials(tenant.id)
    found = list(notices(tenant.id, credentials, now, rules, names))
    if ctx.hosts is not None and ctx.settings.agent_silent_minutes > 0:
        found += silent_agents(tenant.id, await ctx.hosts.list_hosts(tenant), credentials, now,
                               ctx.settings.agent_silent_minutes)
    policies = await ctx.admin.policies.all_stored(tenant)
    oldest = shortest_deletion(policies, reaping)
    revoked = await ctx.store.revoked_before(tenant.id, now - oldest * DAY) if oldest is not None else []
    due = plan(credentials, revoked, now, rule_for(policies, reaping))
    reaped = await Reaper(ctx.admin.credentials, ctx.clock).run(tenant.id, due, names)  # the one path that ends them
    found += reaped.notices
    if reaped.disabled or reaped.deleted:
        log.info("credentials reaped", extra={"event": "credentials_reaped", "tenant_id": tenant.id,
                                              "disabled": reaped.disabled, "deleted": reaped.deleted})
        ctx.directory.invalidate()  # a disabled secret is refused here at once, elsewhere on notice
        if ctx.changes is not None:
            ctx.changes.publish()
        if ctx.outbox_worker is not None:
            ctx.outbox_worker.wake()
    if ctx.outbox is None:
        return 0
    await forget_notices(ctx, tenant, found, rules)
    if not found:
        return 0
    new = await ctx.outbox.emit(found)
    if new and ctx.outbox_worker is not None:
        ctx.outbox_worker.wake()
    return new


async def forget_notices(ctx: ServerContext, tenant: Tenant, found: list[Event], rules: NoticeRules) -> None:
    """Let the outbox forget the dedupe keys of notices whose facts no longer hold (`found` is every
    notice the scan finds true now, sent before or not; `keyless.directory.notices.forgettable`)."""
    assert ctx.outbox is not None
    now = ctx.clock.now()
    live = {e.dedupe for e in found if e.dedupe is not None}
    stale = forgettable(await ctx.outbox.remembered(tenant.id, now - 2 * DAY), live, now, rules)
    if stale:
        log.info("notice memory forgotten", extra={"event": "notices_forgotten", "tenant_id": tenant.id,
                                                   "count": await ctx.outbox.forget(stale)})


async def notice_scan_loop(ctx: ServerContext) -> None:
    """Every `notice_scan_interval` seconds, the replica holding the lease scans every tenant's
    credentials for expiry and disuse (docs/notifications.md, "Scheduled scans")."""
    settings = ctx.settings
    rules = NoticeRules(expiry_days=tuple(settings.expiry_notice_days), unused_days=settings.unused_notice_days)
    reaping = installation_rule(settings.reap_unused_days, settings.reap_delete_after_days)
    if reaping is not None:
        log.warning("KEYLESS_REAP_UNUSED_DAYS and KEYLESS_REAP_DELETE_AFTER_DAYS are deprecated: they apply, in "
                    "enforce mode, only where no policy sets a reaping rule; set one with `keyless policy set` "
                    "(docs/policies.md, 'Reaping')", extra={"event": "deprecated_setting"})
    every, leases, holder = settings.notice_scan_interval, SqlLeases(ctx.engine, ctx.clock), uuid.uuid4().hex
    try:
        while True:
            try:
                if await leases.acquire(NOTICE_SCAN_LEASE, holder, every * 3):
                    for tenant in await ctx.store.list_tenants():
                        new = await scan_tenant(ctx, tenant, rules, reaping)
                        if new:
                            log.info("credential notices emitted", extra={
                                "event": "notices_emitted", "tenant_id": tenant.id, "count": new})
                    if ctx.outbox is not None:
                        await ctx.outbox.purge(ctx.clock.now() - settings.webhook_log_retention_days * 86400)
            except Exception:
                log.exception("notification scan failed", extra={"event": "notice_scan_failed"})
            await asyncio.sleep(every)
    finally:
        try:
            await asyncio.shield(leases.release(NOTICE_SCAN_LEASE, holder))
        except Exception:  # stopping anyway: the lease expires by itself
            log.warning("could not release the notification-scan lease", extra={"event": "lease_release_failed"})
