"""The agent's /metrics (keyless.agent.metrics) is valid Prometheus exposition that a real parser reads
back to the agent's numbers, and names no identity and no token."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from keyless.agent.metrics import metrics_text

STATUS = {"state": "degraded", "cached_tokens": 3, "renewals": 2, "certificate_not_after": 1_765_000_000,
          "host": "web-1", "identities": [{"name": "orders", "client_id": "c0ffee"}]}


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics_text(STATUS, {("imds", 200): 5, ("imds", 400): 1}).decode()
    assert "c0ffee" not in text and "orders" not in text and "web-1" not in text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_parser_reads_back_the_agent_s_numbers() -> None:
    samples = _samples()
    assert samples[("keyless_agent_requests_total", (("endpoint", "imds"), ("status", "200")))] == 5
    assert samples[("keyless_agent_requests_total", (("endpoint", "imds"), ("status", "400")))] == 1
    assert samples[("keyless_agent_state", (("state", "degraded"),))] == 1
    assert samples[("keyless_agent_state", (("state", "ok"),))] == 0
    assert samples[("keyless_agent_cached_tokens", ())] == 3
    assert samples[("keyless_agent_certificate_renewals_total", ())] == 2
    assert samples[("keyless_agent_certificate_not_after_seconds", ())] == 1_765_000_000


def test_each_scrape_stands_alone() -> None:
    """A registry per scrape: a second agent in the process (tests) never sees the first one's counts."""
    assert b"keyless_agent_requests_total{" not in metrics_text(STATUS, {})
