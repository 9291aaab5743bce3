"""A web console session (docs/console.md): who signed in (the credential the one-time login code
was issued to, the credential it signed in with, and its management roles), and until when it may be used."""

from __future__ import annotations

from dataclasses import dataclass

from keyless.domain.model import Actor


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
    # The credential the CLI signed in with when it asked for the login code (issue 20 item 3): its id
    # and kind, never its value; None for a token that named none.
    credential_id: str | None = None
    credential_type: str | None = None

    @property
    def actor(self) -> Actor:
        """Who the session's actions are audited as: its client id and the credential that opened it
        (issue 15: console actions name the console session's credential)."""
        return Actor(self.client_id, self.credential_id, self.credential_type)

    def live_at(self, now: float, idle_timeout: float) -> bool:
        """Open, before its absolute limit and used within the idle timeout."""
        return self.ended_at is None and now < self.expires_at and now - self.last_seen_at < idle_timeout
