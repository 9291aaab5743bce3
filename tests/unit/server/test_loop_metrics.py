"""The event loop's plain-number metrics export exactly what prometheus_client's own would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from keyless.server.loop_metrics import LoopCounter, LoopHistogram

BUCKETS = (0.0005, 0.001, 0.0025, 1.0, 5.0)


def _exposition(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_the_exposition_is_the_libraries_for_the_same_updates() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("req_seconds", "latency", ["surface", "route"], buckets=BUCKETS, registry=theirs)
    h2 = LoopHistogram("req_seconds", "latency", ["surface", "route"], buckets=BUCKETS, registry=ours)
    c1 = Counter("tokens_total", "tokens", ["result", "error"], registry=theirs)
    c2 = LoopCounter("tokens_total", "tokens", ["result", "error"], registry=ours)
    for value in (0.0, 0.0001, 0.0005, 0.00051, 0.001, 0.7, 5.0, 9.5):  # edges included: `le` means <=
        h1.labels("main", "/{tenant}/oauth2/v2.0/token").observe(value)
        h2.labels("main", "/{tenant}/oauth2/v2.0/token").observe(value)
    h1.labels("vault", "/")
    h2.labels("vault", "/")
    c1.labels(result="success", error="").inc()
    c2.labels(result="success", error="").inc()
    c1.labels("failure", "invalid_client").inc(3)
    c2.labels("failure", "invalid_client").inc(3)
    assert _exposition(ours) == _exposition(theirs)
    assert 'req_seconds_bucket{le="0.0005",route="/{tenant}/oauth2/v2.0/token",surface="main"} 3.0' in _exposition(ours)


def test_a_child_is_labelled_once_and_label_counts_are_checked() -> None:
    counter = LoopCounter("c_total", "c", ["a", "b"], registry=None)
    assert counter.labels("x", "y") is counter.labels(a="x", b="y")
    with pytest.raises(ValueError, match="label values"):
        counter.labels("x")
    with pytest.raises(ValueError, match="ascending"):
        LoopHistogram("h", "h", [], buckets=(1.0, 0.5), registry=None)
