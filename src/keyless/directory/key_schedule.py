"""Scheduled signing-key rotation (docs/security.md, docs/deployment.md).

With `KEYLESS_KEY_ROTATION_INTERVAL` set, a tenant whose signing key has signed for longer than the
interval gets a new key through the ordinary rotation (`DirectoryService.rotate_key`): published at
once, signing after the default activation delay, the old key kept until its tokens expire, an audit
record naming the scheduler. A rotation already under way (a `next` key) is never doubled. The server
runs this on one replica at a time (`keyless.store.leases`).
"""

from __future__ import annotations

from collections.abc import Sequence

from keyless.directory.service import DirectoryService
from keyless.domain.model import SigningKey, Tenant
from keyless.oauth.keyring import key_states

SCHEDULER = "keyless:key-schedule"


def rotation_due(keys: Sequence[SigningKey], now: float, interval: float) -> bool:
    """True when the active key has signed for `interval` seconds and no successor is waiting."""
    states = key_states(keys, now)
    if "next" in states.values():
        return False
    active = [k for k in keys if states.get(k.kid) == "active"]
    return bool(active) and now - active[0].activates_at >= interval


async def rotate_due_keys(service: DirectoryService, tenants: Sequence[Tenant], *, interval: float,
                          now: float) -> list[SigningKey]:
    rotated = []
    for tenant in tenants:
        if rotation_due(await service.keys(tenant), now, interval):
            rotated.append(await service.rotate_key(tenant, actor=SCHEDULER))
    return rotated
