"""Prometheus metrics for the server process (`/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TOKEN_REQUESTS = Counter(
    "keyless_token_requests_total", "Token requests by result and OAuth error code", ["result", "error"]
)
SIGNIN_DROPPED = Gauge("keyless_signin_events_dropped", "Sign-in events dropped because the store lagged")
