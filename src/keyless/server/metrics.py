"""Prometheus metrics for the server process (`/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from keyless.server.loop_metrics import LoopCounter

TOKEN_REQUESTS = LoopCounter(  # counted on the event loop only (keyless.server.loop_metrics)
    "keyless_token_requests_total", "Token requests by result and OAuth error code", ["result", "error"]
)
SIGNIN_DROPPED = Gauge("keyless_signin_events_dropped", "Sign-in events dropped because the store lagged")
AUDIT_DROPPED = Gauge("keyless_audit_events_dropped", "Vault read audit events dropped because the store lagged")
VAULT_REQUESTS = Counter(
    "keyless_vault_requests_total", "Key Vault API requests by operation and HTTP status (never names or values)",
    ["operation", "status"],
)
CHANGE_FEED_UP = Gauge(
    "keyless_change_feed_up",
    "1 while this replica hears the other replicas' changes (PostgreSQL LISTEN), 0 while it clears its caches "
    "every second instead; absent on SQLite",
)
CHANGE_PROPAGATION = Histogram(
    "keyless_change_propagation_seconds",
    "From a change's commit on another replica to this replica clearing its caches (docs/deployment.md promises 1 s)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CHANGE_NOTIFICATIONS = Gauge(
    "keyless_change_notifications", "Change notifications this replica sent and received", ["direction"]
)
