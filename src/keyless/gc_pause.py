"""Pausing Python's cyclic garbage collector around one burst of short-lived allocation.

A posture report page builds ~50,000 objects (facts, findings, steps, the answer's dictionaries) that
live for one request and hold no reference cycles: reference counting frees them. The cyclic
collector still runs every 700 allocations and walks the young generation, and a promoted batch
makes it walk every tracked object of the process; for a 20,000-workload report that was ~30 % of
the server's CPU (docs/benchmarks.md, "Posture"). `gc_paused()` suspends it for the burst and
restores it after, counted so that overlapping bursts (concurrent requests on one event loop)
re-enable it only when the last one ends, and never enables a collector someone else disabled.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_paused = 0  # bursts in progress that found the collector enabled and paused it


@contextmanager
def gc_paused() -> Iterator[None]:
    global _paused
    if _paused == 0 and not gc.isenabled():  # disabled by someone else: leave it as it is
        yield
        return
    _paused += 1
    gc.disable()
    try:
        yield
    finally:
        _paused -= 1
        if _paused == 0:
            gc.enable()
