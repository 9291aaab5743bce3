"""The directory's repositories on one engine, as one object for the server's wiring.

Each aggregate has its own module (`tenants`, `applications`, `credentials`, `assignments`,
`signing_keys`, `logs`, `leaks`) implementing its own port in `keyless.domain.ports`; services depend on the
narrow port they use. `SqlDirectoryStore` only combines them (and the single-use store) so the
server builds one object per engine; it holds no SQL of its own. The per-process caching of hot
reads lives beside it in `keyless.store.cache`.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.store.applications import SqlApplicationStore
from keyless.store.assignments import SqlAssignmentStore
from keyless.store.credentials import SqlCredentialStore
from keyless.store.leaks import SqlLeakStore
from keyless.store.logs import SqlLogStore
from keyless.store.one_time import OneTimeStore
from keyless.store.policies import SqlPolicyStore
from keyless.store.signing_keys import SqlSigningKeyStore
from keyless.store.tenants import SqlTenantStore


class SqlDirectoryStore(
    SqlTenantStore, SqlApplicationStore, SqlCredentialStore, SqlAssignmentStore, SqlSigningKeyStore, SqlLogStore,
    SqlLeakStore, SqlPolicyStore,
):
    """Every directory port on one engine (`keyless.domain.ports.DirectoryStore`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._one_time = OneTimeStore(engine)

    def close(self) -> None:
        """Release what the store holds beyond the engine's pool (the single-use and sign-in writers)."""
        self._one_time.close()
        self.close_signin_writer()

    async def prepare(self) -> None:
        """What the server does before it answers: the single-use store's start (`OneTimeStore.prepare`)."""
        await self._one_time.prepare()

    async def release(self) -> None:
        """Return the connections the store holds between batches to the pool; then `close`. Before the
        engine is disposed: a held connection is not the pool's to close."""
        await self._one_time.release()
        await self.release_signin_writer()
        self.close()

    async def consume(self, kind: str, owner: str, value: str, expires_at: float) -> bool:
        return await self._one_time.consume(kind, owner, value, expires_at)
