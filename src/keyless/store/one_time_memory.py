"""Which single-use values a SQLite server has taken: an index in its memory over an append-only log
(issue 18; docs/security.md, "Single use on SQLite").

Why: on SQLite the unique key that decides a value (`one_time_uses`, kind + owner + value) puts every
new value on a random leaf of its index, so each value's commit writes a page of its own to the WAL
and the checkpoint copies it again: 16-25 µs of CPU a value on the server's one core, ~50-100 µs a
private_key_jwt token with the batching around it (docs/benchmarks.md, sessions 9-11). A SQLite
database is one server process's (docs/deployment.md): the process can decide a value in memory, as
it already keeps the failure budgets there, if what it decided survives a restart. So a value taken
here is appended to `one_time_log` (no unique key: the last pages of the table and of its `expires_at`
index, shared by the whole batch) and the request is answered only once that append is committed,
as before. At start the live rows of the log are read back.

The index is bounded (`capacity` values; ~100 bytes each). When it is full, a value is decided by the
unique key of `one_time_uses` instead, as on PostgreSQL, and `deferred_until` is raised to its expiry:
until then every value not found in memory goes to the unique table too, so a value taken there is
refused by it. A value decided by the unique table while the index has room is also added to the
index, at once, so it never raises `deferred_until`, which therefore ends at most one lifetime after
the index last was full. At start `deferred_until` is the latest `expires_at` in `one_time_uses`, so
values taken before an upgrade, or while the index was full before a restart, keep being refused.
Either way, from the moment a value is decided it is in memory or under `deferred_until`.

Values are kept as 16 bytes of SHA-256 over kind, owner and value, length-prefixed so no two triples
share an input; a collision between two live values (about 2^-64 for a pair) would refuse one of them,
never accept a replay.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable

DIGEST_SIZE = 16


def digest(kind: str, owner: str, value: str) -> bytes:
    """The key a value is known by in memory and in the log."""
    data = f"{len(kind)}:{kind}{len(owner)}:{owner}".encode() + value.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).digest()[:DIGEST_SIZE]


class SeenIndex:
    """The values taken and not yet purged, by the second their `expires_at` falls in. A value stays
    taken until `purge` passes that second: an expired value is refused a little longer, never accepted
    early (the unique table keeps its rows until the next purge in the same way)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.deferred_until = 0.0
        self._live: dict[bytes, list[bytes]] = {}  # digest -> the list of its second (identity tells)
        self._seconds: dict[int, list[bytes]] = {}
        self._order: list[int] = []  # a heap of the keys of `_seconds`

    def __len__(self) -> int:
        return len(self._live)

    def seen(self, key: bytes) -> bool:
        return key in self._live

    def full(self, now: float) -> bool:
        """True when a new value goes to the unique table: the index is full, or values the unique
        table decided while it was full may still be live."""
        return len(self._live) >= self.capacity or self.deferred_until >= now

    def defer(self, expires_at: float) -> None:
        """A value went to the unique table and not here: until it expires, every value not found here
        goes there."""
        self.deferred_until = max(self.deferred_until, expires_at)

    def add(self, key: bytes, expires_at: float) -> None:
        second = int(expires_at)
        bucket = self._seconds.get(second)
        if bucket is None:
            bucket = self._seconds[second] = []
            heapq.heappush(self._order, second)
        bucket.append(key)
        self._live[key] = bucket

    def forget(self, key: bytes) -> None:
        """A value whose write failed: nobody was answered for it, so it is free again."""
        self._live.pop(key, None)

    def load(self, rows: Iterable[tuple[bytes, float]], deferred_until: float | None) -> None:
        """What the log and the unique table hold at start."""
        for key, expires_at in rows:
            if key not in self._live:
                self.add(key, expires_at)
        if deferred_until is not None:
            self.defer(deferred_until)

    def purge(self, now: float) -> int:
        """Drop the values whose second ended before `now`; how many."""
        dropped, limit = 0, int(now)
        while self._order and self._order[0] < limit:
            bucket = self._seconds.pop(heapq.heappop(self._order))
            for key in bucket:
                if self._live.get(key) is bucket:  # not a value forgotten and taken again since
                    del self._live[key]
                    dropped += 1
        return dropped
