"""Leaked client secrets (issue 14, docs/leaks.md): what a leak report found and what it did.

A leak is recorded once per (secret, location): a report that names the same secret at the same
place again (a code host's retry, a scanner run twice) changes nothing and is answered as before, so
reports are idempotent per token. The record names where the secret was seen and who said so, never
the secret (catalog O09); the posture report reads these records to show leaked credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from keyless.domain.model import AuditEvent

SecretStatus = Literal["active", "expired", "revoked", "unknown"]
MAX_LOCATION_LEN = 1024
MAX_SOURCE_LEN = 64
MAX_REPORTER_LEN = 128


@dataclass(frozen=True)
class SecretMatch:
    """The stored secret a presented one hashes to, and its state (never its value or digest)."""

    tenant_id: str
    client_id: str
    secret_id: str
    hint: str
    display_name: str  # the owning application's
    expires_at: float
    revoked_at: float | None

    def status(self, now: float) -> SecretStatus:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if now < self.expires_at else "expired"


@dataclass(frozen=True)
class Leak:
    """One place a secret was reported seen. `revoked` tells whether this report revoked it (it was
    live until then); `status_before` is the state the report found."""

    id: str
    tenant_id: str
    client_id: str
    secret_id: str
    hint: str
    location: str
    source: str  # "scan" (keyless scan), or the code host's `source` (content, commit, …)
    reporter: str  # the management caller's client id, or "github:<key id>"
    reported_at: float
    status_before: SecretStatus
    revoked: bool


class LeakStore(Protocol):
    async def find_secret(self, digest: bytes, tenant_id: str | None) -> SecretMatch | None:
        """The secret stored under this keyed hash (in one tenant, or in any when `tenant_id` is
        None: a code host's report names no tenant)."""
        ...

    async def record_leak(self, leak: Leak, audit: AuditEvent) -> tuple[Leak, bool]:
        """Store `leak`, revoking its secret when `leak.revoked`, with `audit`, in one transaction;
        when the (secret, location) pair is already recorded, change nothing and return that record
        with False."""
        ...

    async def leaks(self, tenant_id: str, client_id: str | None = None) -> Sequence[Leak]: ...
