"""Scheduled signing-key rotation (keyless.directory.key_schedule), with a frozen clock."""

from __future__ import annotations

from keyless.directory.key_schedule import SCHEDULER, rotate_due_keys, rotation_due
from keyless.directory.service import DEFAULT_ACTIVATION_DELAY
from keyless.domain.ports import LogQuery
from keyless.oauth.keyring import key_states
from tests.unit.directory.conftest import Env

DAY = 86400


async def test_a_key_older_than_the_interval_is_rotated_once_through_the_ordinary_rotation(env: Env) -> None:
    (first,) = await env.service.keys(env.tenant)
    assert await rotate_due_keys(env.service, [env.tenant], interval=30 * DAY, now=env.clock.now()) == []
    env.clock.advance(30 * DAY)
    (new,) = await rotate_due_keys(env.service, [env.tenant], interval=30 * DAY, now=env.clock.now())
    assert new.activates_at == env.clock.now() + DEFAULT_ACTIVATION_DELAY  # published first, signs later
    # A rotation under way is not doubled, however often the schedule looks.
    assert await rotate_due_keys(env.service, [env.tenant], interval=30 * DAY, now=env.clock.now()) == []
    env.clock.advance(DEFAULT_ACTIVATION_DELAY)
    keys = await env.service.keys(env.tenant)
    assert key_states(keys, env.clock.now()) == {first.kid: "previous", new.kid: "active"}
    assert not rotation_due(keys, env.clock.now(), 30 * DAY)  # the new key's age counts from its activation
    events = await env.store.query_audit(LogQuery(tenant_id=env.tenant.id, action="key.rotate"))
    assert [(e.actor, e.target_id) for e in events if e.target_id == new.kid] == [(SCHEDULER, new.kid)]
