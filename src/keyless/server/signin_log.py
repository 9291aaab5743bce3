"""Sign-in events, written in batches off the token endpoint's request path (`BatchWriter`),
together with the last use (time and source address) of each credential that signed in, of every
kind: the token endpoint itself writes nothing per request (issue 13 item 2, the inventory)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, cast

from keyless.domain.credentials import CredentialKind, LastUse, latest_uses
from keyless.domain.model import SignInEvent
from keyless.server.batching import BatchWriter

CREDENTIAL_KINDS = frozenset({"secret", "certificate", "federated"})


class SignInStore(Protocol):
    """Where a batch goes: the sign-in log, and the last use of each credential, in one transaction
    (`keyless.store.logs.SqlLogStore.record_signin_batch`)."""

    async def record_signin_batch(self, events: Sequence[SignInEvent],
                                  used: Mapping[CredentialKind, Mapping[str, LastUse]]) -> None: ...

    async def release_signin_writer(self) -> None:
        """Let go of what the writes held (a connection), once the last batch is written."""


class SignInBatcher(BatchWriter[SignInEvent]):
    def __init__(self, store: SignInStore, interval: float = 0.5) -> None:
        super().__init__(self._write_batch, interval, name="signin")
        self._store = store

    async def _write_batch(self, batch: list[SignInEvent]) -> None:
        used = latest_uses([
            (cast(CredentialKind, e.credential_type), e.credential_id, e.time, e.source) for e in batch
            if e.result == "success" and e.credential_id and e.credential_type in CREDENTIAL_KINDS
        ])  # failures never count as use
        await self._store.record_signin_batch(batch, used)

    async def close(self) -> None:
        """Write what is left, then release the store's writer."""
        try:
            await super().close()
        finally:
            await self._store.release_signin_writer()
