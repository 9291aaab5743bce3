"""`ServerContext.open`: what `keyless serve` wires together, looked at in process on a real SQLite
data directory."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from urllib.parse import quote

from keyless.oauth.request import TokenHttpRequest
from keyless.oauth.service import TokenResult
from keyless.server.context import ServerContext
from keyless.server.init import initialize
from keyless.server.settings import ServerSettings

RESOURCE = "api://orders"


async def test_the_token_service_leaves_its_signatures_to_the_listeners_turn(tmp_path: Path) -> None:
    """A request that the listener steps (`Turn.run`) and whose reads hit the caches waits for its
    signature until the end of the loop's turn, then finishes there with no task: the token service
    and the listener share one `eager.Turn` (docs/architecture.md, "A token request"). Wired to
    anything else it would still answer, only without the gain, so this is the test that notices."""
    root = tmp_path / "d"
    await initialize(root)
    ctx = await ServerContext.open(ServerSettings(data_dir=root, vault_port=-1))
    try:
        tenant = await ctx.admin.tenant("default")
        await ctx.admin.create_application(tenant, "orders", actor="test", identifier_uri=RESOURCE, roles=["Read"])
        client = await ctx.admin.create_application(tenant, "worker", actor="test")
        _, secret = await ctx.admin.add_secret(tenant, client.client_id, actor="test")
        await ctx.admin.grant(tenant, client.client_id, RESOURCE, "Read", actor="test")
        basic = base64.b64encode(f"{quote(client.client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
        http = TokenHttpRequest(method="POST", content_type="application/x-www-form-urlencoded",
                                authorization=f"Basic {basic}", query=b"", source="127.0.0.1",
                                body=f"grant_type=client_credentials&scope={quote(RESOURCE)}%2F.default".encode())
        assert (await ctx.tokens.handle(tenant.id, http)).status == 200  # the caches are warm from here

        answers: list[TokenResult] = []
        tasks: list[asyncio.Task[None]] = []

        async def request() -> None:
            answers.append(await ctx.tokens.handle(tenant.id, http))

        ctx.turn.run(asyncio.get_running_loop(), request(), tasks.append)
        assert answers == []  # stepped up to its signature, which waits for the end of the turn
        for _ in range(3):
            await asyncio.sleep(0)
        assert [a.status for a in answers] == [200], answers
        assert tasks == []  # and it went on from there without a task
    finally:
        await ctx.close()
