"""A web console session (docs/console.md): who signed in (the credential the one-time login code
was issued to, and its management roles), and until when it may be used."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConsoleSession:
    id: str  # SHA-256 (hex) of the cookie's value; the value itself is never stored
    tenant_id: str
    client_id: str
    object_id: str
    roles: frozenset[str]
    created_at: float
    last_seen_at: float
    expires_at: float  # the absolute limit
    ended_at: float | None = None

    def live_at(self, now: float, idle_timeout: float) -> bool:
        """Open, before its absolute limit and used within the idle timeout."""
        return self.ended_at is None and now < self.expires_at and now - self.last_seen_at < idle_timeout
