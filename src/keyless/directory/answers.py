"""Recent answers of a report kept whole, as the bytes sent (the posture report's pages, docs/benchmarks.md
"Posture"): a report of 20,000 workloads costs the server a CPU-second to build and is read page by page,
often again soon (a script, the console, an operator refining a filter).

An answer is served again only while it is younger than `ttl` (the report's own bound on how far it
may lag the sign-in log) and only if no write was announced since (`invalidate`: every committed
change of this replica, and of the others through the change feed, `keyless.store.changes`). An answer
whose build began before the last `invalidate` is never kept, so a write during a build cannot be
hidden. The bytes kept are bounded (oldest dropped first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from keyless.clock import Clock

Answer = tuple[bytes, str | None]  # the body, and the `Link` header if any


class RecentAnswers:
    def __init__(self, clock: Clock, ttl: float, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max_bytes = max_bytes
        self._kept: OrderedDict[Hashable, tuple[float, Answer]] = OrderedDict()
        self._bytes = 0
        self.generation = 0  # pass to `put` the value read before the build began

    def get(self, key: Hashable) -> Answer | None:
        hit = self._kept.get(key)
        if hit is None:
            return None
        if self._clock.now() >= hit[0]:
            self._drop(key)
            return None
        self._kept.move_to_end(key)
        return hit[1]

    def put(self, key: Hashable, answer: Answer, generation: int) -> None:
        size = len(answer[0])
        if generation != self.generation or size > self._max_bytes:
            return
        if key in self._kept:
            self._drop(key)
        self._kept[key] = (self._clock.now() + self._ttl, answer)
        self._bytes += size
        while self._bytes > self._max_bytes:
            self._drop(next(iter(self._kept)))

    def invalidate(self) -> None:
        self._kept.clear()
        self._bytes = 0
        self.generation += 1

    def _drop(self, key: Hashable) -> None:
        _, answer = self._kept.pop(key)
        self._bytes -= len(answer[0])
