"""The agent's `GET /metrics`, exposed through `prometheus_client` (issue 12 item 6) like the server's
(keyless.server.metrics), so the exposition format — escaping, types, float rendering — is the
library's, not hand-written text. Each scrape reports a snapshot of the agent's status and request
counts; nothing here names an identity or holds a token (docs/agent.md)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

STATES = ("ok", "degraded", "revoked")


class _Snapshot(Collector):
    def __init__(self, status: Mapping[str, Any], counts: Mapping[tuple[str, int], int]) -> None:
        self._status = status
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("keyless_agent_requests", "Requests answered, by endpoint and HTTP status.",
                                       labels=["endpoint", "status"])
        for (endpoint, status), count in sorted(self._counts.items()):
            requests.add_metric([endpoint, str(status)], count)
        yield requests
        state = GaugeMetricFamily("keyless_agent_state", "1 for the agent's current state.", labels=["state"])
        for name in STATES:
            state.add_metric([name], int(self._status["state"] == name))
        yield state
        yield GaugeMetricFamily("keyless_agent_cached_tokens", "Tokens in the cache.",
                                value=self._status["cached_tokens"])
        yield CounterMetricFamily("keyless_agent_certificate_renewals", "Host certificate renewals since start.",
                                  value=self._status["renewals"])
        yield GaugeMetricFamily("keyless_agent_certificate_not_after_seconds",
                                "Expiry of the host certificate (epoch seconds).",
                                value=self._status["certificate_not_after"] or 0)


def metrics_text(status: Mapping[str, Any], counts: Mapping[tuple[str, int], int]) -> bytes:
    """Prometheus text exposition (format 0.0.4) of one snapshot, from a registry of its own: no
    process-global state, so two agents in one process (tests) never mix their counts."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(status, counts))
    return generate_latest(registry)
