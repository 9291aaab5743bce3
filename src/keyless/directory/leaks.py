"""Leak response use cases (issue 14, docs/leaks.md): tell whether presented strings are live
Keyless secrets, and record a leak, revoking the secret at once.

A presented secret is never stored, logged or sent on: it is checked for format and checksum, then
reduced to its keyed hash (`SecretHasher`, the one the token endpoint uses) and looked up by that.
Revocation does not spare the caller's own last credential (the lock-out rule of `revoke_secret`):
a leaked secret is already someone else's, and keeping it alive is worse than a locked-out client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keyless import text
from keyless.clock import Clock
from keyless.crypto import secrets as secret_format
from keyless.crypto.secrets import SecretHasher
from keyless.directory.base import UseCases, _nothing, notifying
from keyless.directory.credentials import CredentialService
from keyless.directory.errors import Invalid
from keyless.domain.events import LEAK_REPORTED, Event
from keyless.domain.leaks import (
    MAX_LOCATION_LEN,
    MAX_REPORTER_LEN,
    MAX_SOURCE_LEN,
    Leak,
    LeakStore,
    SecretMatch,
    SecretStatus,
)
from keyless.domain.model import Tenant
from keyless.ids import new_guid

MAX_LOOKUP = 100
LEAK_ACTION = "secret.leaked"


@dataclass(frozen=True)
class Lookup:
    """What the server says about one presented string: `not_a_secret` for a wrong format or
    checksum, `unknown` for a well-formed secret this tenant never issued."""

    hint: str
    status: SecretStatus | str
    match: SecretMatch | None = None


class LeakService(UseCases):
    def __init__(self, store: LeakStore, clock: Clock, hasher: SecretHasher,
                 on_change: Callable[[], None] = _nothing, *, credentials: CredentialService) -> None:
        super().__init__(clock, on_change)
        self._store = store
        self._hasher = hasher
        self._credentials = credentials

    async def _find(self, candidate: str, tenant_id: str | None) -> SecretMatch | None:
        if not secret_format.has_valid_checksum(candidate):
            return None
        return await self._store.find_secret(self._hasher.digest(candidate), tenant_id)

    async def lookup(self, tenant: Tenant, candidates: Sequence[str]) -> list[Lookup]:
        if len(candidates) > MAX_LOOKUP:
            raise Invalid("too_many_secrets", f"at most {MAX_LOOKUP} secrets per lookup")
        now = self._clock.now()
        out = []
        for candidate in candidates:
            if not secret_format.has_valid_checksum(candidate):
                out.append(Lookup(hint="", status="not_a_secret"))
                continue
            match = await self._find(candidate, tenant.id)
            hint = secret_format.hint(candidate)
            out.append(Lookup(hint, "unknown") if match is None else Lookup(hint, match.status(now), match))
        return out

    async def report(self, candidate: str, *, tenant: Tenant | None, location: str, source: str,
                     reporter: str) -> tuple[Leak, bool] | None:
        """Record that `candidate` was seen at `location` and revoke it if it is live. None when it
        is not a secret of this tenant (of any tenant, when `tenant` is None); otherwise the leak
        record and whether this call created it (False: the same report was made before)."""
        location = text.stored(location, MAX_LOCATION_LEN) or ""
        if not location:
            raise Invalid("invalid_location", "say where the secret was seen (a file and line, or a URL)")
        match = await self._find(candidate, tenant.id if tenant is not None else None)
        if match is None:
            return None
        now = self._clock.now()
        before = match.status(now)
        leak = Leak(
            id=new_guid(), tenant_id=match.tenant_id, client_id=match.client_id, secret_id=match.secret_id,
            hint=match.hint, location=location, source=text.stored(source, MAX_SOURCE_LEN) or "unknown",
            reporter=text.stored(reporter, MAX_REPORTER_LEN) or "unknown", reported_at=now,
            status_before=before, revoked=match.revoked_at is None,
        )
        details = {"credential_id": match.secret_id, "client_id": match.client_id, "hint": match.hint,
                   "location": leak.location, "source": leak.source, "reporter": leak.reporter,
                   "status_before": before}
        # The actor as given (audit_row sanitises it): an `Actor` names the credential it signed in with.
        audit = notifying(
            self._audit(match.tenant_id, reporter, LEAK_ACTION, "application", match.client_id,
                        secret_id=match.secret_id, revoked=leak.revoked, **details),
            # The owners' webhooks hear of it in the same transaction (docs/notifications.md); a
            # repeated report writes nothing, so it notifies nobody twice.
            Event(LEAK_REPORTED, match.tenant_id, now, match.secret_id, details),
        )
        # The revocation goes through the credential service's one path for ending a credential; the
        # caches hear of it only when this report revoked the secret.
        return await self._credentials.retire(audit, lambda a: self._store.record_leak(leak, a),
                                              changed=lambda outcome: outcome[1] and outcome[0].revoked)

    async def leaks(self, tenant: Tenant, client_id: str | None = None) -> Sequence[Leak]:
        return await self._store.leaks(tenant.id, client_id)
