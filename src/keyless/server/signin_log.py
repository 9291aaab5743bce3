"""Sign-in events, written in batches off the token endpoint's request path (`BatchWriter`),
together with the last use (time and source address) of each credential that signed in, of every
kind: the token endpoint itself writes nothing per request (issue 13 item 2, the inventory)."""

from __future__ import annotations

from typing import Protocol, cast

from keyless.domain.credentials import CredentialKind, latest_uses
from keyless.domain.model import SignInEvent
from keyless.domain.ports import CredentialStore, LogStore
from keyless.server.batching import BatchWriter

CREDENTIAL_KINDS = frozenset({"secret", "certificate", "federated"})


class SignInStore(LogStore, CredentialStore, Protocol):
    """Where a batch goes: the sign-in log, and the last-use time of each credential."""


class SignInBatcher(BatchWriter[SignInEvent]):
    def __init__(self, store: SignInStore, interval: float = 0.5) -> None:
        super().__init__(self._write_batch, interval, name="signin")
        self._store = store

    async def _write_batch(self, batch: list[SignInEvent]) -> None:
        used = latest_uses([
            (cast(CredentialKind, e.credential_type), e.credential_id, e.time, e.source) for e in batch
            if e.result == "success" and e.credential_id and e.credential_type in CREDENTIAL_KINDS
        ])
        await self._store.record_signins(batch)
        for kind, uses in used.items():
            await self._store.mark_used(kind, uses)
