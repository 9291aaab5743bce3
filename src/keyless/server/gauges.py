"""Gauges an operator alerts on (docs/deployment.md, "Watching it"): how soon credentials and signing
keys expire, and whether this replica's caches hear the others' changes.

Expiry is read from the store at most once a minute per replica (`EXPIRY_REFRESH`), at scrape time,
and reported as seconds from the scrape, so a Prometheus rule such as
`keyless_credential_expiry_seconds < 7 * 86400` needs no arithmetic. Only labels an operator chose
appear (tenant name, credential kind, owner kind): never a credential id, name or hint, nor an
object id, so the label space stays small and no inventory leaks through `/metrics`. Counts of
credentials by kind and state belong to the posture report's gauges, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import Gauge

from keyless.domain.credentials import Credential
from keyless.domain.model import SigningKey
from keyless.oauth.keyring import key_states
from keyless.server.context import ServerContext

EXPIRY_REFRESH = 60.0

CREDENTIAL_EXPIRY = Gauge(
    "keyless_credential_expiry_seconds",
    "Seconds until the soonest expiry among the active credentials of this kind and owner kind "
    "(absent when none expires)", ["tenant", "kind", "owner"],
)
SIGNING_KEY_AGE = Gauge("keyless_signing_key_age_seconds", "Seconds the active signing key has signed", ["tenant"])
SIGNING_KEY_EXPIRY = Gauge(
    "keyless_signing_key_expiry_seconds",
    "Seconds until the active signing key is due for scheduled rotation (KEYLESS_KEY_ROTATION_INTERVAL; absent "
    "without a schedule, or while its successor is already published)", ["tenant"],
)
CACHE_ENTRIES = Gauge("keyless_cache_entries", "Entries in this replica's token-path caches", ["cache"])
CACHE_CLEARS = Gauge("keyless_cache_clears",
                     "Times this replica cleared its token-path caches (a local or a remote change)")
FRESH_READS = Gauge(
    "keyless_client_rereads",
    "Client records re-read after a failed credential check against the cache (a credential newer than the "
    "cached record; see docs/deployment.md)",
)


@dataclass
class ExpiryReport:
    """Expiry instants read from the store: (tenant, kind, owner) → soonest, tenant → key instants."""

    credentials: dict[tuple[str, str, str], float] = field(default_factory=dict)
    key_activated: dict[str, float] = field(default_factory=dict)
    key_due: dict[str, float] = field(default_factory=dict)
    read_at: float = float("-inf")


def soonest(tenant: str, credentials: Iterable[Credential], now: float) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = {}
    for c in credentials:
        if c.expires_at is None or c.state(now) != "active":
            continue
        key = (tenant, c.kind, c.owner.kind)
        out[key] = min(out.get(key, c.expires_at), c.expires_at)
    return out


def key_instants(keys: Sequence[SigningKey], now: float, interval: float | None) -> tuple[float | None, float | None]:
    """When the active key began signing, and when it is due for scheduled rotation (None: not due:
    no schedule, or its successor is already published)."""
    states = key_states(keys, now)
    active = [k for k in keys if states.get(k.kid) == "active"]
    if not active:
        return None, None
    began = active[0].activates_at
    if interval is None or "next" in states.values():
        return began, None
    return began, began + interval


def publish(report: ExpiryReport, now: float) -> None:
    """Set the gauges from the report, as seconds from `now`; series of vanished keys are dropped."""
    CREDENTIAL_EXPIRY.clear()
    for (tenant, kind, owner), at in report.credentials.items():
        CREDENTIAL_EXPIRY.labels(tenant, kind, owner).set(at - now)
    SIGNING_KEY_AGE.clear()
    for tenant, began in report.key_activated.items():
        SIGNING_KEY_AGE.labels(tenant).set(now - began)
    SIGNING_KEY_EXPIRY.clear()
    for tenant, due in report.key_due.items():
        SIGNING_KEY_EXPIRY.labels(tenant).set(due - now)


async def read(ctx: ServerContext) -> ExpiryReport:
    """Every tenant's credential inventory and signing keys, reduced to the instants the gauges show."""
    now = ctx.clock.now()
    interval = ctx.settings.key_rotation_interval or None
    report = ExpiryReport(read_at=now)
    for tenant in await ctx.store.list_tenants():
        report.credentials.update(soonest(tenant.name, await ctx.admin.credentials.inventory(tenant), now))
        began, due = key_instants(await ctx.admin.keys(tenant), now, interval)
        if began is not None:
            report.key_activated[tenant.name] = began
        if due is not None:
            report.key_due[tenant.name] = due
    return report


class Gauges:
    """What `/metrics` refreshes before it answers (one per server application)."""

    def __init__(self) -> None:
        self._report = ExpiryReport()

    async def refresh(self, ctx: ServerContext) -> None:
        now = ctx.clock.now()
        if now - self._report.read_at >= EXPIRY_REFRESH:
            self._report = await read(ctx)
        publish(self._report, now)
        for name, size in ctx.directory.sizes().items():
            CACHE_ENTRIES.labels(name).set(size)
        CACHE_CLEARS.set(ctx.directory.clears)
        FRESH_READS.set(ctx.directory.rereads)
