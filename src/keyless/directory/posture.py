"""The posture report (issue 13 item 5, docs/ladder.md): for each application and managed identity its
rung, its credentials' risk factors and the next step up as commands; for the tenant, how its sign-ins
and workloads spread over the rungs.

The facts come from `PostureStore` in a fixed number of aggregated queries per page; the rules are
pure (`keyless.domain.posture`, `keyless.directory.advice`). Nothing in a report is secret: a secret
appears by id and hint only (catalog O14).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from keyless.cache import TtlCache
from keyless.clock import Clock
from keyless.crypto.ca import IssuedByCa
from keyless.directory.advice import Step, fix, next_step
from keyless.directory.answers import RecentAnswers
from keyless.directory.errors import NotFound
from keyless.domain.model import Tenant
from keyless.domain.posture import (
    Assessment,
    PostureStore,
    RiskFinding,
    Score,
    SignInWindow,
    Thresholds,
    assess,
    score_of,
)
from keyless.paging import MAX_REPORT_LIMIT

MAX_PAGE = MAX_REPORT_LIMIT


@dataclass(frozen=True)
class Entry:
    assessment: Assessment
    next_step: Step | None
    fixes: tuple[tuple[RiskFinding, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Report:
    entries: Sequence[Entry]
    next_after: str | None  # where the next page starts; None on the last page


class PostureService:
    def __init__(self, store: PostureStore, clock: Clock, thresholds: Thresholds = Thresholds(),
                 host_map_ttl: float = 60.0) -> None:
        self._store = store
        self._clock = clock
        self.thresholds = thresholds
        # The sign-in window's facts (each credential's use, each host's addresses) are the tenant's,
        # not the page's: read once per minute, not once per page, so a report of many pages scans
        # the window once. A report may so lag the sign-in log by up to `host_map_ttl` seconds.
        self._windows: TtlCache[SignInWindow] = TtlCache(clock, host_map_ttl, max_entries=64)
        # Whole answers (the API's encoded pages), kept as long as the window and dropped on any write.
        self.answers = RecentAnswers(clock, host_map_ttl)
        # "Issued by our CA" needs the CA's signature checked; the store keeps each certificate's
        # verdict (migration 0017), so an estate's certificates are checked once, not once per process.
        self._issuers: dict[bytes, IssuedByCa] = {}

    def _window(self, tenant: Tenant) -> Awaitable[SignInWindow]:
        since = self._clock.now() - self.thresholds.window
        return self._windows.get(tenant.id, lambda: self._store.signin_window(tenant.id, since))

    async def report(self, tenant: Tenant, *, after: str | None = None, limit: int = 100,
                     client_id: str | None = None, rung: str | None = None, risk: str | None = None,
                     ca_pem: bytes | None = None, commands: bool = True) -> Report:
        """One page of workloads in client-id order (without each risk's fix commands unless `commands`:
        a summary does not show them). `rung` and `risk` filter the page after it is
        assessed (a page may hold fewer than `limit` entries and still have a next one); `client_id`
        selects one workload (NotFound when the tenant has none of that id)."""
        now, th = self._clock.now(), self.thresholds
        window = await self._window(tenant)
        internal_ca = None
        if ca_pem is not None:
            internal_ca = self._issuers.get(ca_pem) or self._issuers.setdefault(ca_pem, IssuedByCa(ca_pem, 65536))
        facts = await self._store.posture_facts(tenant.id, usage=window.usage, after=after,
                                                limit=max(1, min(limit, MAX_PAGE)), client_id=client_id,
                                                internal_ca=internal_ca)
        if client_id is not None and not facts.workloads:
            raise NotFound("application_not_found", "no application or identity with this client id")
        host_of = window.host_of
        entries = []
        for w in facts.workloads:
            a = assess(w, host_of, now, th)
            if rung is not None and a.rung != rung:
                continue
            if risk is not None and all(f.risk != risk for f in a.findings):
                continue
            step = next_step(a, now)
            entries.append(Entry(a, step, tuple((f, fix(a, f, now, step) if commands else ()) for f in a.findings)))
        return Report(entries, facts.next_after)

    async def score(self, tenant: Tenant) -> Score:
        now = self._clock.now()
        signins = (await self._window(tenant)).by_rung
        return score_of(signins, await self._store.credential_flags(tenant.id, now), self.thresholds.window)
