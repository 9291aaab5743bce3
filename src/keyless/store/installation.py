"""The installation's shared identity: the one public URL every replica issues tokens under.

Each tenant's issuer is `{public URL}/{tenant}/v2.0` (docs/protocol.md), and a resource server trusts
exactly one issuer string, so N replicas behind a load balancer must announce the same URL, whatever
port or host each listens on (docs/deployment.md). The first replica to start records the URL in the
database; every later one must present the same URL or refuse to start, naming both, so a
mis-configured replica never serves tokens that half the fleet's validators refuse.
"""

from __future__ import annotations

import time

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.errors import ConfigurationError
from keyless.store.tables import installation

PUBLIC_URL = "public_url"


async def stored_public_url(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        value: str | None = (
            await conn.execute(select(installation.c.value).where(installation.c.name == PUBLIC_URL))
        ).scalar_one_or_none()
    return value


async def agree_public_url(engine: AsyncEngine, url: str, *, move: bool = False) -> str:
    """Record `url` as the installation's public URL if none is recorded yet; otherwise require the
    recorded one (or, with `move`, replace it: a deliberate change, e.g. `keyless db set-public-url`).

    The insert relies on the primary key, so two replicas starting at once with different URLs cannot
    both win: the loser reads the winner's value and refuses.
    """
    url = url.rstrip("/")
    current = await stored_public_url(engine)
    if current is None:
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(installation).values(name=PUBLIC_URL, value=url, updated_at=time.time()))
            return url
        except IntegrityError:
            current = await stored_public_url(engine)
    if current == url:
        return url
    if move:
        async with engine.begin() as conn:
            await conn.execute(
                update(installation).where(installation.c.name == PUBLIC_URL).values(value=url, updated_at=time.time())
            )
        return url
    raise ConfigurationError(
        f"this database's public URL is {current} but this server would announce {url}: every replica must "
        f"use the same one (start with --public-url {current}, or move the installation with "
        "`keyless db set-public-url URL`)"
    )
