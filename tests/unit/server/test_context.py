"""`ServerContext.open`: what `keyless serve` wires together, looked at in process on a real SQLite
data directory: the token service and the listener share one `eager.Turn`, for its signatures and its
client assertions' verifications (docs/architecture.md, "A token request"). Wired otherwise, requests
would still be answered, only without the gain, so these are the tests that notice."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

from keyless.crypto.certificates import load_certificate
from keyless.crypto.client_keys import generate_client_key, self_signed_certificate
from keyless.domain.model import Tenant
from keyless.jose.jws import sign_with_headers
from keyless.oauth.client_auth import ASSERTION_TYPE
from keyless.oauth.metadata import issuer
from keyless.oauth.request import TokenHttpRequest
from keyless.oauth.service import TokenResult
from keyless.server.context import ServerContext
from keyless.server.init import initialize
from keyless.server.settings import ServerSettings

RESOURCE = "api://orders"


async def open_context(root: Path) -> ServerContext:
    await initialize(root)
    return await ServerContext.open(ServerSettings(data_dir=root, vault_port=-1))


async def register(ctx: ServerContext) -> tuple[Tenant, str, str]:
    """A resource, a client granted its role, and the client's secret: (tenant, client id, secret)."""
    tenant = await ctx.admin.tenant("default")
    await ctx.admin.create_application(tenant, "orders", actor="test", identifier_uri=RESOURCE, roles=["Read"])
    client = await ctx.admin.create_application(tenant, "worker", actor="test")
    _, secret = await ctx.admin.add_secret(tenant, client.client_id, actor="test")
    await ctx.admin.grant(tenant, client.client_id, RESOURCE, "Read", actor="test")
    return tenant, client.client_id, secret


def form(body: str, authorization: str | None = None) -> TokenHttpRequest:
    return TokenHttpRequest(method="POST", content_type="application/x-www-form-urlencoded",
                            authorization=authorization, query=b"", source="127.0.0.1", body=body.encode())


async def stepped(ctx: ServerContext, tenant_id: str, http: TokenHttpRequest) -> tuple[list[int], int, int]:
    """One request stepped by the listener's `Turn` (as `TokenProtocol` does): the statuses answered and
    the tasks it needed when `run` returned, and the tasks it had needed once answered."""
    answers: list[TokenResult] = []
    tasks: list[asyncio.Task[None]] = []

    async def request() -> None:
        answers.append(await ctx.tokens.handle(tenant_id, http))

    ctx.turn.run(asyncio.get_running_loop(), request(), tasks.append)
    at_once, tasks_at_once = [a.status for a in answers], len(tasks)
    for _ in range(100):
        if answers:
            break
        await asyncio.sleep(0)
    assert [a.status for a in answers] == [200], answers
    return at_once, tasks_at_once, len(tasks)


async def test_the_token_service_leaves_its_signatures_to_the_listeners_turn(tmp_path: Path) -> None:
    """A request whose reads hit the caches waits for its signature until the end of the loop's turn,
    then finishes there with no task."""
    ctx = await open_context(tmp_path / "d")
    try:
        tenant, client_id, secret = await register(ctx)
        basic = base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
        http = form(f"grant_type=client_credentials&scope={quote(RESOURCE)}%2F.default", f"Basic {basic}")
        assert (await ctx.tokens.handle(tenant.id, http)).status == 200  # the caches are warm from here
        at_once, tasks_at_once, tasks = await stepped(ctx, tenant.id, http)
        assert at_once == [] and tasks_at_once == 0  # stepped up to its signature, left for the turn's end
        assert tasks == 0
    finally:
        await ctx.close()


async def test_a_private_key_jwt_requests_verification_waits_for_the_end_of_the_turn(tmp_path: Path) -> None:
    """The assertion's signature is verified at the end of the loop's turn: when `run` returns, the
    request has neither been answered nor needed a task (it would have, had it verified at once and
    gone on to wait for its `jti`'s group commit)."""
    ctx = await open_context(tmp_path / "d")
    try:
        tenant, client_id, _ = await register(ctx)
        key = generate_client_key("p256")
        pem = self_signed_certificate(key, "worker", now=time.time())
        await ctx.admin.add_certificate(tenant, client_id, pem, actor="test")
        header = {"typ": "JWT", "x5t#S256": load_certificate(pem).x5t_s256}

        def request() -> TokenHttpRequest:
            now = int(time.time())
            claims = {"iss": client_id, "sub": client_id, "aud": issuer(ctx.base_url, tenant), "iat": now,
                      "exp": now + 300, "jti": str(uuid.uuid4())}
            assertion = sign_with_headers(claims, key, alg="ES256", headers=header)
            return form(urlencode({"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                                   "client_assertion": assertion, "scope": f"{RESOURCE}/.default"}))

        assert (await ctx.tokens.handle(tenant.id, request())).status == 200  # warm caches and store
        at_once, tasks_at_once, _ = await stepped(ctx, tenant.id, request())
        assert at_once == [] and tasks_at_once == 0
    finally:
        await ctx.close()
