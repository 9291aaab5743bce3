"""`FailureThrottle`: the token endpoint's failure model on a frozen clock (docs/security.md,
"Failure throttling"): failures are throttled per source, per (source, client) and per client, and a
source with no failure of its own is never refused, so nobody can lock a client out."""

from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

from keyless.clock import FrozenClock
from keyless.oauth.ratelimit import Budget, FailureThrottle

TENANT = "t1"
CLIENT = "c1"


def throttle(source: Budget = Budget(30, 0.5), pair: Budget = Budget(10, 0.1),
             client: Budget = Budget(100, 2)) -> tuple[FrozenClock, FailureThrottle]:
    clock = FrozenClock(1_000.0)
    return clock, FailureThrottle.in_process(clock, source=source, source_client=pair, client=client)


def test_a_source_spraying_many_clients_is_stopped_by_its_source_budget() -> None:
    _, t = throttle()
    for i in range(30):
        assert t.retry_after("10.0.0.1", TENANT, f"client-{i}") == 0
        t.failed("10.0.0.1", TENANT, f"client-{i}")
    assert t.retry_after("10.0.0.1", TENANT, "client-new") == 2
    assert t.retry_after("10.0.0.2", TENANT, "client-new") == 0


def test_a_source_guessing_one_client_is_stopped_by_the_pair_budget() -> None:
    _, t = throttle()
    for _ in range(10):
        t.failed("10.0.0.1", TENANT, CLIENT)
    assert t.retry_after("10.0.0.1", TENANT, CLIENT) == 10  # one token at 0.1/s
    assert t.retry_after("10.0.0.1", TENANT, "another-client") == 0  # source budget not spent yet
    assert t.retry_after("10.0.0.2", TENANT, CLIENT) == 0


def test_under_attack_each_attacking_source_gets_one_guess_per_refill() -> None:
    clock, t = throttle()
    attackers = [f"10.1.{i // 250}.{i % 250}" for i in range(100)]
    for source in attackers:  # 100 sources, one failure each: the client's budget is spent
        t.failed(source, TENANT, CLIENT)
    # Each attacking source now waits (its pair owes a failure) while the client's budget is empty ...
    assert all(t.retry_after(s, TENANT, CLIENT) == 1 for s in attackers)
    # ... but a source with no failure against the client is verified: the right secret gets through.
    assert t.retry_after("10.9.9.9", TENANT, CLIENT) == 0
    # Once the client's budget holds a token again, one more guess each, which spends it again.
    clock.advance(0.5)
    assert t.retry_after(attackers[0], TENANT, CLIENT) == 0
    t.failed(attackers[0], TENANT, CLIENT)
    assert t.retry_after(attackers[1], TENANT, CLIENT) == 1


def test_an_attacking_source_is_clean_again_once_its_pair_bucket_is_full() -> None:
    clock, t = throttle(client=Budget(1, 0.001))  # a client budget that stays empty for a long time
    t.failed("10.0.0.1", TENANT, CLIENT)
    assert t.retry_after("10.0.0.1", TENANT, CLIENT) == 10  # pair owes 1 token at 0.1/s
    clock.advance(10)
    assert t.retry_after("10.0.0.1", TENANT, CLIENT) == 0


def test_clients_and_tenants_are_separate() -> None:
    _, t = throttle(client=Budget(1, 0.01))
    t.failed("10.0.0.1", TENANT, CLIENT)
    assert t.retry_after("10.0.0.1", TENANT, "c2") == 0
    assert t.retry_after("10.0.0.1", "t2", CLIENT) == 0


def test_a_huge_claimed_client_id_costs_one_bucket() -> None:
    _, t = throttle(pair=Budget(1, 0.1))
    t.failed("10.0.0.1", TENANT, "x" * 64 + "a")
    assert t.retry_after("10.0.0.1", TENANT, "x" * 64 + "b") == 10  # same 64-character key


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0, 5)), max_size=200),
       st.floats(1, 50), st.floats(0.01, 5), st.floats(1, 20), st.floats(0.01, 2))
def test_property_a_source_that_never_failed_is_never_refused(
    steps: list[tuple[int, float]], client_burst: float, client_rate: float, pair_burst: float, pair_rate: float
) -> None:
    """Whatever failures other sources pile onto a client, a source without failures of its own (the
    client's workload presenting its valid credential) is always verified."""
    clock, t = throttle(pair=Budget(pair_burst, pair_rate), client=Budget(client_burst, client_rate))
    for attacker, advance in steps:
        clock.advance(advance)
        t.failed(f"10.6.0.{attacker}", TENANT, CLIENT)
        assert t.retry_after("10.7.0.1", TENANT, CLIENT) == 0


@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 3)), max_size=100), st.floats(0.001, 5))
def test_property_retry_after_is_honest(steps: list[tuple[int, float]], client_rate: float) -> None:
    """Waiting the announced Retry-After always suffices (the wait is never 0 while refused)."""
    clock, t = throttle(source=Budget(3, 0.5), pair=Budget(2, 0.25), client=Budget(4, client_rate))
    for attacker, advance in steps:
        clock.advance(advance)
        source = f"10.8.0.{attacker}"
        wait = t.retry_after(source, TENANT, CLIENT)
        if wait:
            later_clock, later = copy.deepcopy((clock, t))
            later_clock.advance(wait + 1e-6)  # a hair more, for float rounding of the elapsed time
            assert later.retry_after(source, TENANT, CLIENT) == 0
        t.failed(source, TENANT, CLIENT)
