"""Counters and latency histograms that the event loop updates on every request, as plain numbers.

prometheus_client's own metrics take a lock per update and walk a histogram's buckets in Python: the
token endpoint's one counter and one latency observation cost ~3 % of a token's CPU (issue 18,
docs/benchmarks.md). Every update of these comes from the server's event-loop thread (the token path
in the listener, the ASGI middleware, the route handlers), so a value is a plain attribute, a bucket
is found by bisection, and the numbers reach `/metrics` through a custom collector, the library's own
way to export values it does not hold (`prometheus_client.registry.Collector`); the exposition is the
same as the library's metric of that name and type (samples, labels, `+Inf` bucket), without the
`_created` series.

Not for values updated from other threads (`run_in_executor` work, the store's writer threads): use
prometheus_client's metrics there.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class CounterChild:
    """One label combination's count."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class HistogramChild:
    """One label combination's observations: a count per bucket (not cumulative; `+Inf` last) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # bucket `le` holds values <= le
        self.sum += value


class _Family(Collector):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry | None) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        if registry is not None:
            registry.register(self)

    def _check(self, values: tuple[str, ...]) -> None:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes {len(self.labelnames)} label values")


class LoopCounter(_Family):
    """A counter family (`name` without `_total`, as prometheus_client's `Counter` takes it)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: CollectorRegistry | None = REGISTRY) -> None:
        self._children: dict[tuple[str, ...], CounterChild] = {}
        super().__init__(name.removesuffix("_total"), documentation, labelnames, registry)

    def labels(self, *values: str, **named: str) -> CounterChild:
        key = values or tuple(named[label] for label in self.labelnames)
        self._check(key)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = CounterChild()
        return child

    def collect(self) -> list[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, child in list(self._children.items()):
            family.add_metric(list(key), child.value)
        return [family]


class LoopHistogram(_Family):
    """A histogram family with fixed bucket bounds (seconds, ascending; `+Inf` is implied)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], *, buckets: Sequence[float],
                 registry: CollectorRegistry | None = REGISTRY) -> None:
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("histogram buckets must be ascending and distinct")
        self.bounds = bounds
        self._children: dict[tuple[str, ...], HistogramChild] = {}
        super().__init__(name, documentation, labelnames, registry)

    def labels(self, *values: str) -> HistogramChild:
        self._check(values)
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = HistogramChild(self.bounds)
        return child

    def collect(self) -> list[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        edges = [*(floatToGoString(b) for b in self.bounds), "+Inf"]  # type: ignore[no-untyped-call] # as the library spells `le`
        for key, child in list(self._children.items()):
            running, buckets = 0, []
            for edge, count in zip(edges, child.counts, strict=True):
                running += count
                buckets.append((edge, float(running)))
            family.add_metric(list(key), buckets, child.sum)
        return [family]
