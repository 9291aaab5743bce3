"""The token endpoint's policy step (keyless.oauth.policy_check, docs/policies.md): after client
authentication, before the grant; enforce is the usual 401 with the reason in the sign-in log, audit
succeeds with the reason noted and one `policy.violation` event a day per credential."""

from __future__ import annotations

import base64
import ipaddress

from keyless.domain.events import POLICY_VIOLATION, Event
from keyless.domain.policies import NO_POLICY, MaxLifetime, Policy, SourceNetworks
from keyless.oauth.policy_check import SignInPolicy
from keyless.oauth.service import TokenService
from tests.unit.oauth.fakes import BASE_URL, MemoryOneTimeUses, World, http_request, make_world

AUTH_FAILED = {"error": "invalid_client", "error_description": "client authentication failed (invalid_client)"}


class Fixed:
    """`EffectivePolicies` answering one policy for the world's client, none for anyone else."""

    def __init__(self, world: World, policy: Policy) -> None:
        self.world, self.fixed, self.calls = world, policy, 0

    async def policy(self, tenant_id: str, client_id: str) -> Policy:
        self.calls += 1
        return self.fixed if client_id == self.world.client.client_id else NO_POLICY


def _service(w: World, policy: Policy) -> tuple[TokenService, list[Event], Fixed]:
    events: list[Event] = []
    policies = Fixed(w, policy)
    check = SignInPolicy(policies, w.directory, events=events.append, clock=w.clock)
    service = TokenService(directory=w.directory, keyring=w.keyring, hasher=w.hasher, clock=w.clock, sink=w.sink,
                           replay=MemoryOneTimeUses(), base_url=BASE_URL, throttle=w.throttle,
                           after_client_auth=(("policy", check.step),))
    return service, events, policies


ONLY_10_20 = Policy(source_networks=SourceNetworks("enforce", (ipaddress.ip_network("10.20.0.0/16"),)))


def test_policy_step_runs_after_client_auth_and_before_the_grant() -> None:
    w = make_world()
    service, _, _ = _service(w, NO_POLICY)
    names = [name for name, _ in service.steps]
    assert names.index("client_auth") + 1 == names.index("policy") == names.index("grant") - 1


async def test_no_policy_is_one_lookup_and_changes_nothing() -> None:
    w = make_world()
    service, events, policies = _service(w, NO_POLICY)
    result = await service.handle(w.tenant.id, http_request(w.form()))
    assert result.status == 200 and w.sink.last.detail is None and events == [] and policies.calls == 1


async def test_enforce_is_the_usual_401_with_the_reason_only_in_the_log() -> None:
    w = make_world()
    service, events, _ = _service(w, ONLY_10_20)
    result = await service.handle(w.tenant.id, http_request(w.form(), source="10.99.0.1"))
    assert (result.status, result.body) == (401, AUTH_FAILED)
    last = w.sink.last
    assert (last.result, last.error, last.detail, last.client_id) == (
        "failure", "invalid_client", "policy_source_network", w.client.client_id)
    assert last.credential_id is not None and events == []
    ok = await service.handle(w.tenant.id, http_request(w.form(), source="10.20.5.5"))
    assert ok.status == 200


async def test_enforce_with_basic_auth_answers_the_basic_challenge() -> None:
    w = make_world()
    service, _, _ = _service(w, ONLY_10_20)
    basic = base64.b64encode(f"{w.client.client_id}:{w.secret}".encode()).decode()
    form = {k: v for k, v in w.form().items() if k not in ("client_id", "client_secret")}
    result = await service.handle(w.tenant.id, http_request(form, authorization=f"Basic {basic}", source="::1"))
    assert result.status == 401 and result.headers["WWW-Authenticate"] == 'Basic realm="keyless"'


async def test_audit_succeeds_notes_the_reason_and_notifies_once_a_day() -> None:
    w = make_world()
    policy = Policy(source_networks=SourceNetworks("audit", (ipaddress.ip_network("10.20.0.0/16"),)),
                    max_lifetime=MaxLifetime("audit", secret=60))
    service, events, _ = _service(w, policy)
    secret = w.directory.add_secret(w.client, lifetime=3 * 86400)
    for _ in range(3):
        result = await service.handle(w.tenant.id, http_request(w.form(client_secret=secret), source="10.99.0.1"))
        assert result.status == 200
        assert w.sink.last.detail == "policy_audit:policy_lifetime_exceeded,policy_source_network"
    assert len(events) == 1
    event = events[0]
    assert (event.type, event.tenant_id, event.subject) == (POLICY_VIOLATION, w.tenant.id, w.sink.last.credential_id)
    assert event.data["reasons"] == ["policy_lifetime_exceeded", "policy_source_network"]
    assert event.data["during"] == "sign_in" and event.dedupe
    w.clock.advance(86400)  # the same credential, the next day: one more notice
    again = await service.handle(w.tenant.id, http_request(w.form(client_secret=secret), source="10.99.0.1"))
    assert again.status == 200
    assert len(events) == 2 and events[1].subject == event.subject and events[1].dedupe != event.dedupe
