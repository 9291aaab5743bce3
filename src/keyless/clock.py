"""Injectable time.

Core code never calls `time.time()` itself: expiry, rotation and clock skew are then tested by moving a
`FrozenClock` instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    """The system's wall clock. `now` is `time.time` itself, a C function with no Python frame: a
    token request reads the clock about ten times (caches, expiry checks, the sign-in record), and a
    method around it was ~2 % of a token's instructions (issue 18)."""

    now = staticmethod(time.time)


class FrozenClock:
    """A clock that moves only when told to: for tests."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = when
