"""Posture gauges on `/metrics` (issue 13 item 5): credentials by kind and state, and successful
sign-ins of the last 24 hours by rung, across the installation.

Computed on scrape, but cheaply: at most once per `REFRESH` seconds per process (a scrape in between
gets the last values), each refresh four grouped counts, and bounded to `TIMEOUT` seconds so a slow
database never stalls the scrape (the previous values stay).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

from prometheus_client import Gauge

from keyless.domain.posture import RUNGS
from keyless.store.posture import SqlPostureStore

REFRESH = 60.0
STATES = {"secret": ("active", "expired", "revoked"), "certificate": ("active", "not_yet_valid", "expired", "revoked"),
          "federated": ("active",)}
TIMEOUT = 2.0
SIGNIN_WINDOW = 86400.0

CREDENTIALS = Gauge("keyless_credentials", "Credentials of every owner by kind and state", ["kind", "state"])
SIGNINS_BY_RUNG = Gauge("keyless_signins_24h", "Successful sign-ins in the last 24 hours by rung of the ladder",
                        ["rung"])
log = logging.getLogger("keyless.server")
_per_process: weakref.WeakKeyDictionary[object, PostureGauges] = weakref.WeakKeyDictionary()


class PostureGauges:
    def __init__(self, store: SqlPostureStore) -> None:
        self._store = store
        self._lock = asyncio.Lock()
        self._next = 0.0

    async def refresh(self, now: float) -> None:
        """Refresh the gauges unless they are fresh; never raises (a failure keeps the old values)."""
        if time.monotonic() < self._next or self._lock.locked():
            return
        async with self._lock:
            self._next = time.monotonic() + REFRESH
            try:
                async with asyncio.timeout(TIMEOUT):
                    counts = await self._store.credential_counts(now)
                    signins = await self._store.signins_by_rung(None, now - SIGNIN_WINDOW)
            except Exception:
                log.warning("posture gauges not refreshed", extra={"event": "posture_gauges_failed"})
                return
            for kind, states in STATES.items():
                for state in states:
                    CREDENTIALS.labels(kind, state).set(counts.get((kind, state), 0))
            for rung in RUNGS:
                SIGNINS_BY_RUNG.labels(rung).set(signins.get(rung, 0))


def gauges_for(owner: object, store: SqlPostureStore) -> PostureGauges:
    """The one `PostureGauges` of a server process's engine (made on first scrape)."""
    found = _per_process.get(owner)
    if found is None:
        found = _per_process[owner] = PostureGauges(store)
    return found
