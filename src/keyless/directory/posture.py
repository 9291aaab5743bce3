"""The posture report (issue 13 item 5, docs/ladder.md): for each application and managed identity its
rung, its credentials' risk factors and the next step up as commands; for the tenant, how its sign-ins
and workloads spread over the rungs.

The facts come from `PostureStore` in a fixed number of aggregated queries per page; the rules are
pure (`keyless.domain.posture`, `keyless.directory.advice`). Nothing in a report is secret: a secret
appears by id and hint only (catalog O14).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keyless.clock import Clock
from keyless.directory.advice import Step, fix, next_step
from keyless.directory.errors import NotFound
from keyless.domain.model import Tenant
from keyless.domain.posture import Assessment, Finding, PostureStore, Score, Thresholds, assess, score_of

MAX_PAGE = 1000


@dataclass(frozen=True)
class Entry:
    assessment: Assessment
    next_step: Step | None
    fixes: tuple[tuple[Finding, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Report:
    entries: Sequence[Entry]
    next_after: str | None  # where the next page starts; None on the last page


class PostureService:
    def __init__(self, store: PostureStore, clock: Clock, thresholds: Thresholds = Thresholds()) -> None:
        self._store = store
        self._clock = clock
        self.thresholds = thresholds

    async def report(self, tenant: Tenant, *, after: str | None = None, limit: int = 100,
                     client_id: str | None = None, rung: str | None = None, risk: str | None = None,
                     ca_pem: bytes | None = None) -> Report:
        """One page of workloads in client-id order. `rung` and `risk` filter the page after it is
        assessed (a page may hold fewer than `limit` entries and still have a next one); `client_id`
        selects one workload (NotFound when the tenant has none of that id)."""
        now, th = self._clock.now(), self.thresholds
        facts = await self._store.posture_facts(tenant.id, now=now, since=now - th.window, after=after,
                                                limit=max(1, min(limit, MAX_PAGE)), client_id=client_id,
                                                ca_pem=ca_pem)
        if client_id is not None and not facts.workloads:
            raise NotFound("application_not_found", "no application or identity with this client id")
        entries = []
        for w in facts.workloads:
            a = assess(w, facts.host_of, now, th)
            if rung is not None and a.rung != rung:
                continue
            if risk is not None and all(f.risk != risk for f in a.findings):
                continue
            entries.append(Entry(a, next_step(a, now), tuple((f, fix(a, f, now)) for f in a.findings)))
        return Report(entries, facts.next_after)

    async def score(self, tenant: Tenant) -> Score:
        now, window = self._clock.now(), self.thresholds.window
        signins = await self._store.signins_by_rung(tenant.id, now - window)
        return score_of(signins, await self._store.credential_flags(tenant.id, now), window)
