"""`ManagementClient.collect`: the CLI follows the management API's `Link: rel="next"` pages
(docs/api.md, "Paging") and never lets a next link carry its bearer token anywhere else.

The server here is a hostile stand-in on an httpx transport: a real Keyless server never sends such
links (tests/integration/server/test_paging.py drives the real one)."""

from __future__ import annotations

import httpx
import pytest

from keyless.cli.common import CliError, ManagementClient, Target

SERVER = "https://keyless.test"


def _client(pages: dict[str, tuple[list[int], str | None]], seen: list[httpx.Request]) -> ManagementClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/oauth2/v2.0/token"):
            return httpx.Response(200, json={"access_token": "t0k3n", "token_type": "Bearer", "expires_in": 3600})
        body, following = pages[request.url.path + ("?" + request.url.query.decode() if request.url.query else "")]
        headers = {"Link": f'<{following}>; rel="next"'} if following else {}
        return httpx.Response(200, json=body, headers=headers)

    target = Target(server=SERVER, ca=True, tenant="t", client_id="cli", client_secret="s")
    return ManagementClient(target, httpx.Client(transport=httpx.MockTransport(answer)))


def test_every_page_is_followed_and_the_limit_stops_early() -> None:
    seen: list[httpx.Request] = []
    pages = {"/t/manage/v1/things?limit=1000": ([1, 2], "/t/manage/v1/things?limit=2&cursor=a"),
             "/t/manage/v1/things?limit=2&cursor=a": ([3, 4], "/t/manage/v1/things?limit=2&cursor=b"),
             "/t/manage/v1/things?limit=2&cursor=b": ([5], None),
             "/t/manage/v1/things?limit=3": ([1, 2], "/t/manage/v1/things?limit=2&cursor=a")}
    assert _client(pages, seen).collect("/things") == [1, 2, 3, 4, 5]
    assert _client(pages, seen).collect("/things", limit=3) == [1, 2, 3]


@pytest.mark.parametrize("following", ["https://evil.test/steal", "//evil.test/steal", "evil"])
def test_a_next_link_to_another_host_is_refused_before_the_token_leaves(following: str) -> None:
    seen: list[httpx.Request] = []
    client = _client({"/t/manage/v1/things?limit=1000": ([1], following)}, seen)
    with pytest.raises(CliError, match="next-page link"):
        client.collect("/things")
    assert all(r.url.host == "keyless.test" for r in seen)


def test_a_server_that_links_a_page_to_itself_does_not_loop_forever() -> None:
    seen: list[httpx.Request] = []
    loop = "/t/manage/v1/things?limit=2&cursor=a"
    client = _client({"/t/manage/v1/things?limit=1000": ([1], loop), loop: ([2], loop)}, seen)
    with pytest.raises(CliError, match="next-page link"):
        client.collect("/things")
    assert len(seen) <= 4


def test_repeated_query_keys_written_into_the_path_are_all_sent() -> None:
    """`?kind=secret&kind=certificate` kept only the last value once the path's query became a dict;
    every value is sent, in order, and a key given as a parameter replaces the path's."""
    seen: list[httpx.Request] = []
    pages = {"/t/manage/v1/things?kind=secret&kind=certificate&owner=b&limit=1000": ([1], None),
             "/t/manage/v1/things?kind=secret&kind=certificate&owner=b": ([2], None),
             "/t/manage/v1/things?state=active&kind=x&kind=y": ([3], None)}
    client = _client(pages, seen)
    assert client.collect("/things?kind=secret&kind=certificate&owner=a", params={"owner": "b"}) == [1]
    assert client.call("GET", "/things?kind=secret&kind=certificate", params={"owner": "b", "none": None}) == [2]
    assert client.call("GET", "/things?kind=z&state=active", params={"kind": ["x", "y"]}) == [3]
