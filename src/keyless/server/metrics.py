"""Prometheus metrics for the server process (`/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TOKEN_REQUESTS = Counter(
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
CHANGE_NOTIFICATIONS = Gauge(
    "keyless_change_notifications", "Change notifications this replica sent and received", ["direction"]
)
