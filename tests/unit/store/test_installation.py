"""The installation's one public URL (docs/deployment.md): first writer records it, others must agree."""

from __future__ import annotations

import asyncio

import pytest

from keyless.errors import ConfigurationError
from keyless.store import db
from keyless.store.installation import agree_public_url, stored_public_url


async def test_first_url_is_recorded_and_a_different_one_is_refused(url: str) -> None:
    engine = db.create_engine(url)
    try:
        await db.migrate(engine)
        assert await stored_public_url(engine) is None
        assert await agree_public_url(engine, "https://keyless.example/") == "https://keyless.example"
        assert await agree_public_url(engine, "https://keyless.example") == "https://keyless.example"
        with pytest.raises(ConfigurationError) as refused:
            await agree_public_url(engine, "https://127.0.0.1:9443")
        assert str(refused.value) == (
            "this database's public URL is https://keyless.example but this server would announce "
            "https://127.0.0.1:9443: every replica must use the same one (start with --public-url "
            "https://keyless.example, or move the installation with `keyless db set-public-url URL`)"
        )
        assert await stored_public_url(engine) == "https://keyless.example"
    finally:
        await engine.dispose()


async def test_a_deliberate_move_replaces_the_recorded_url(url: str) -> None:
    engine = db.create_engine(url)
    try:
        await db.migrate(engine)
        await agree_public_url(engine, "https://old.example")
        assert await agree_public_url(engine, "https://new.example", move=True) == "https://new.example"
        assert await stored_public_url(engine) == "https://new.example"
    finally:
        await engine.dispose()


async def test_replicas_starting_at_once_with_different_urls_cannot_both_win(url: str) -> None:
    engine = db.create_engine(url)
    try:
        await db.migrate(engine)
        results = await asyncio.gather(
            *[agree_public_url(engine, f"https://replica-{n}.example") for n in range(6)], return_exceptions=True
        )
        winners = [r for r in results if isinstance(r, str)]
        assert len(winners) == 1
        assert all(isinstance(r, ConfigurationError) for r in results if not isinstance(r, str))
        assert await stored_public_url(engine) == winners[0]
    finally:
        await engine.dispose()
