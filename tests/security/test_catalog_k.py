"""Catalog K: rate limiting and brute force, against a real server with the production limits.

`fresh_server` runs with the defaults: 30 failed client authentications per source (refill 0.5/s) and 100
per claimed client_id (refill 2/s). Requests come from distinct loopback addresses (127.0.0.x) so that the
per-source and per-client buckets can be told apart.

Rows not tested here: K02 (limit before hashing) is observable only in process and is pinned in
tests/unit/oauth/test_service.py::test_failures_throttle_the_source_with_429 (no directory lookup while
throttled); K03-K05 need client assertions, the managed-identity endpoint and federation, which do not
exist yet.
"""

from __future__ import annotations

import ssl
import time
import uuid

import httpx
import pytest

from tests.security.support import AUTH_FAILED, SecWorld, assert_answer, sec_world
from tests.support.server import RunningServer

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

RATE_LIMITED = {"error": "invalid_request", "error_description": "rate limited"}
SOURCE_BURST = 30
CLIENT_BURST = 100
MAX_REQUESTS = 200


def from_address(server: RunningServer, address: str) -> httpx.Client:
    """An HTTPS client whose connections leave from `address` (any 127/8 address works on Linux)."""
    ctx = ssl.create_default_context(cafile=server.ca)
    return httpx.Client(transport=httpx.HTTPTransport(verify=ctx, local_address=address), timeout=10)


def guess(http: httpx.Client, w: SecWorld, client_id: str, n: int) -> httpx.Response:
    return http.post(w.server.token_endpoint,
                     data=w.form(client_id=client_id, client_secret=f"kls_guess{n:06d}{uuid.uuid4().hex}"))


def assert_limited(resp: httpx.Response) -> int:
    assert_answer(resp, 429, RATE_LIMITED)
    retry_after = int(resp.headers["retry-after"])
    assert 1 <= retry_after <= 2  # ceil(missing token / 0.5 per second) for the source, /2 for the client
    return retry_after


def signins(w: SecWorld, client_id: str) -> list[dict[str, object]]:
    resp = w.manage("GET", "/logs/signins", params={"client_id": client_id, "limit": 1000})
    assert resp.status_code == 200
    return list(resp.json())


def test_k01_guessing_one_client_throttled_per_source_without_lockout(fresh_server: RunningServer) -> None:
    with sec_world(fresh_server) as w, from_address(fresh_server, "127.0.0.2") as attacker:
        for n in range(MAX_REQUESTS):
            resp = guess(attacker, w, w.client_id, n)
            if resp.status_code == 429:
                break
            assert_answer(resp, 401, AUTH_FAILED)
        else:
            pytest.fail(f"no 429 after {MAX_REQUESTS} wrong secrets from one source")
        assert SOURCE_BURST <= n <= SOURCE_BURST + 10  # the burst, plus what refilled meanwhile
        retry_after = assert_limited(resp)

        # Documented behaviour: while the source's bucket is empty the right secret waits as well; the
        # check runs before any credential work (K02), so a throttled request costs no hashing.
        assert_limited(attacker.post(fresh_server.token_endpoint, data=w.form()))
        # Other sources are not affected (127.0.0.1: the shared client of the world).
        assert w.token().status_code == 200
        # No permanent lockout: after Retry-After the right secret works from the same source.
        time.sleep(retry_after)
        ok = attacker.post(fresh_server.token_endpoint, data=w.form())
        assert ok.status_code == 200, ok.text
        assert set(ok.json()) == {"token_type", "expires_in", "ext_expires_in", "access_token"}

        # The admin can see the attack in the sign-in log (the "alert" of the catalog row).
        events = signins(w, w.client_id)
        limited = [e for e in events if e["detail"] == "too_many_failures"]
        assert limited and all(e["source"] == "127.0.0.2" and e["error"] == "invalid_request" for e in limited)
        wrong = [e for e in events if e["detail"] == "wrong_secret"]
        assert len(wrong) == n and all(e["source"] == "127.0.0.2" for e in wrong)


def test_k01_spray_and_per_client_limits(fresh_server: RunningServer) -> None:
    with sec_world(fresh_server) as w:
        # One common secret sprayed across many client ids from one source: the source bucket stops it.
        with from_address(fresh_server, "127.0.0.3") as sprayer:
            common = "kls_" + "S" * 49
            for n in range(MAX_REQUESTS):  # noqa: B007 - n counts the attempts, read after the loop
                resp = sprayer.post(fresh_server.token_endpoint,
                                    data=w.form(client_id=str(uuid.uuid4()), client_secret=common))
                if resp.status_code == 429:
                    break
                assert_answer(resp, 401, AUTH_FAILED)
            else:
                pytest.fail("spraying was never throttled")
            assert SOURCE_BURST <= n <= SOURCE_BURST + 10
            assert_limited(resp)
            assert_limited(sprayer.post(fresh_server.token_endpoint, data=w.form()))

        # Guesses against one client_id spread over many sources, none of which reaches its own limit:
        # the per-client bucket stops them.
        sources = [from_address(fresh_server, f"127.0.1.{i}") for i in range(1, 9)]
        per_source = dict.fromkeys(range(len(sources)), 0)
        try:
            for n in range(MAX_REQUESTS):
                i = n % len(sources)
                resp = guess(sources[i], w, w.client_id, n)
                per_source[i] += 1
                if resp.status_code == 429:
                    break
                assert_answer(resp, 401, AUTH_FAILED)
            else:
                pytest.fail("guesses spread over sources were never throttled")
            assert max(per_source.values()) < SOURCE_BURST  # so it was not a source bucket
            assert CLIENT_BURST <= n <= CLIENT_BURST + 20
            retry_after = assert_limited(resp)
        finally:
            for http in sources:
                http.close()

        with from_address(fresh_server, "127.0.2.1") as bystander:
            # Documented: while the client's bucket is empty its right secret waits too, from any source ...
            assert_limited(bystander.post(fresh_server.token_endpoint, data=w.form()))
            # ... while other clients are unaffected from that same source.
            other_id, other_secret = w.new_client()
            other = bystander.post(fresh_server.token_endpoint,
                                   data=w.form(client_id=other_id, client_secret=other_secret))
            assert other.status_code == 200, other.text
            time.sleep(retry_after)
            assert bystander.post(fresh_server.token_endpoint, data=w.form()).status_code == 200


def test_k01_malformed_requests_do_not_drain_the_bucket(world: SecWorld) -> None:
    """Only failed client authentication takes tokens: a client's own malformed requests never lock it out.
    (On the shared server the limits are lifted, so this checks the answers stay 400, not 429.)"""
    for _ in range(5):
        resp = world.token(world.form(scope="api://unknown/.default"))
        assert resp.status_code == 400
    assert world.token().status_code == 200
