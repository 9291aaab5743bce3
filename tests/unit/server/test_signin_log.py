"""The sign-in batcher writes off the request path and loses nothing on a clean shutdown."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from keyless.domain.credentials import LastUse
from keyless.domain.model import SignInEvent
from keyless.server.signin_log import SignInBatcher


class RecordingStore:
    def __init__(self, fail_times: int = 0) -> None:
        self.events: list[SignInEvent] = []
        self.used: dict[str, float] = {}
        self.sources: dict[str, str | None] = {}
        self.fail_times = fail_times

    async def record_signins(self, events: Sequence[SignInEvent]) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise OSError("database down")
        self.events.extend(events)

    async def mark_used(self, kind: str, uses: Mapping[str, LastUse]) -> None:
        self.used.update({(k if kind == "secret" else f"{kind}:{k}"): u.at for k, u in uses.items()})
        self.sources.update({k: u.source for k, u in uses.items()})

    async def record_signin_batch(self, events: Sequence[SignInEvent],
                                  used: Mapping[str, Mapping[str, LastUse]]) -> None:
        """Both or neither, as the SQL store's one transaction."""
        await self.record_signins(events)
        for kind, uses in used.items():
            await self.mark_used(kind, uses)

    async def release_signin_writer(self) -> None:
        self.released = True


def event(t: float, result: str = "success", cred: str | None = "s1", kind: str = "secret",
          source: str = "127.0.0.1") -> SignInEvent:
    return SignInEvent(time=t, tenant_id="t", client_id="c", credential_id=cred, credential_type=kind,
                       resource="api://r", result=result, error=None, detail=None, source=source)  # type: ignore[arg-type]


async def test_close_flushes_everything_and_last_used() -> None:
    store = RecordingStore()
    batcher = SignInBatcher(store, interval=60)  # type: ignore[arg-type]
    batcher.start()
    for t in (1.0, 3.0, 2.0):
        batcher.record(event(t))
    batcher.record(event(9.0, result="failure"))
    await batcher.close()
    assert [e.time for e in store.events] == [1.0, 3.0, 2.0, 9.0]
    assert store.used == {"s1": 3.0}  # failures never count as use


async def test_failed_write_keeps_events_for_the_next_flush() -> None:
    store = RecordingStore(fail_times=1)
    batcher = SignInBatcher(store, interval=60)  # type: ignore[arg-type]
    batcher.record(event(1.0))
    with contextlib.suppress(OSError):
        await batcher.flush()
    batcher.record(event(2.0))
    await batcher.close()
    assert [e.time for e in store.events] == [1.0, 2.0]


class PoisonStore(RecordingStore):
    """Refuses any batch holding the poisoned event (as PostgreSQL refuses a NUL byte)."""

    async def record_signins(self, events: Sequence[SignInEvent]) -> None:
        if any(e.client_id == "poison" for e in events):
            raise ValueError("refused")
        self.events.extend(events)


async def test_one_refused_event_cannot_block_the_log() -> None:
    store = PoisonStore()
    batcher = SignInBatcher(store, interval=60)  # type: ignore[arg-type]
    batcher.record(event(1.0))
    batcher.record(SignInEvent(time=2.0, tenant_id="t", client_id="poison", credential_id=None,
                               credential_type=None, resource=None, result="failure", error="invalid_client",
                               detail=None, source=None))
    batcher.record(event(3.0))
    for _ in range(2):
        with contextlib.suppress(ValueError):
            await batcher.flush()
    await batcher.flush()
    assert [e.time for e in store.events] == [1.0, 3.0]
    assert batcher.dropped == 1


async def test_last_use_and_its_source_are_kept_for_every_kind() -> None:
    """The latest success per credential wins, with its source address, for secrets, certificates and
    federated credentials alike; the token endpoint itself wrote nothing."""
    store = RecordingStore()
    batcher = SignInBatcher(store, interval=60)  # type: ignore[arg-type]
    batcher.record(event(5.0, cred="s1", source="10.0.0.5"))
    batcher.record(event(4.0, cred="s1", source="10.0.0.4"))
    batcher.record(event(2.0, cred="c1", kind="certificate", source="10.0.0.2"))
    batcher.record(event(3.0, cred="f1", kind="federated", source="2001:db8::1"))
    batcher.record(event(6.0, cred="f1", kind="federated", result="failure", source="10.6.6.6"))
    await batcher.close()
    assert store.used == {"s1": 5.0, "certificate:c1": 2.0, "federated:f1": 3.0}
    assert store.sources == {"s1": "10.0.0.5", "c1": "10.0.0.2", "f1": "2001:db8::1"}
