"""Sign-in events, written in batches off the token endpoint's request path (`BatchWriter`),
together with the "last used" time of each secret and certificate that signed in."""

from __future__ import annotations

from typing import Protocol

from keyless.domain.model import SignInEvent
from keyless.domain.ports import CredentialStore, LogStore
from keyless.server.batching import BatchWriter


class SignInStore(LogStore, CredentialStore, Protocol):
    """Where a batch goes: the sign-in log, and the last-use time of each credential."""


class SignInBatcher(BatchWriter[SignInEvent]):
    def __init__(self, store: SignInStore, interval: float = 0.5) -> None:
        super().__init__(self._write_batch, interval, name="signin")
        self._store = store

    async def _write_batch(self, batch: list[SignInEvent]) -> None:
        used: dict[str, dict[str, float]] = {"secret": {}, "certificate": {}}
        for e in batch:
            if e.result == "success" and e.credential_id and e.credential_type in used:
                seen = used[e.credential_type]
                seen[e.credential_id] = max(e.time, seen.get(e.credential_id, 0.0))
        await self._store.record_signins(batch)
        await self._store.mark_secrets_used(used["secret"])
        await self._store.mark_certificates_used(used["certificate"])
