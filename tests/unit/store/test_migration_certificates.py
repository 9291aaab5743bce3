"""Migration 0010 (one certificate table for applications and hosts) on a database made by the
previous head (0009), on SQLite and PostgreSQL: every row is carried with its id, owner, last use
and revocation, and the carried certificates still authenticate at the token endpoint (RFC 7523
§2.2 client assertions, docs/protocol.md)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.clock import FrozenClock
from keyless.crypto import aead
from keyless.crypto.certificates import load_certificate
from keyless.crypto.client_keys import generate_client_key, self_signed_certificate
from keyless.crypto.keys import PrivateKey
from keyless.crypto.secrets import SecretHasher
from keyless.directory.hosts import HostService
from keyless.directory.service import DirectoryService
from keyless.domain.model import Application, Tenant
from keyless.jose.jws import sign_with_headers
from keyless.oauth.client_auth import ASSERTION_TYPE
from keyless.oauth.keyring import KeyRing
from keyless.oauth.ratelimit import Budget, FailureThrottle
from keyless.oauth.service import TokenService
from keyless.store import db
from keyless.store import tables as t
from keyless.store.directory import SqlDirectoryStore
from keyless.store.hosts import SqlHostStore
from keyless.store.outbox_tables import outbox_events
from tests.unit.oauth.fakes import BASE_URL, ListSink, http_request

START = 1_800_000_000.0
RESOURCE = "api://orders"


CERTIFICATES_REVISION = "0010"  # the migration under test; the database is made by the one before it


def _previous_head() -> str:
    revision = ScriptDirectory.from_config(db.alembic_config()).get_revision(CERTIFICATES_REVISION)
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


def _upgrade_to(revision: str) -> Any:
    def run(connection: Connection) -> None:
        cfg = db.alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    return run


@dataclass
class Old:
    """What the database made by the previous head holds."""

    tenant: Tenant
    app: Application
    identity_client_id: str
    host_id: str
    app_key: PrivateKey
    host_key: PrivateKey
    app_cert_id: str
    revoked_cert_id: str
    host_cert_id: str
    app_der: bytes


def _cert_row(cert_id: str, key: PrivateKey, name: str) -> dict[str, Any]:
    info = load_certificate(self_signed_certificate(key, name, now=START, days=30), now=START)
    return {"id": cert_id, "x5t": info.x5t, "x5t_s256": info.x5t_s256, "der": info.der, "subject": info.subject,
            "key_type": info.key_type, "key_size": info.key_size, "not_before": info.not_before,
            "not_after": info.not_after, "created_at": START}


async def _fill_previous_head(engine: AsyncEngine, service: DirectoryService, hosts: HostService) -> Old:
    """Tenants, applications and hosts through today's code (their tables did not change in 0010);
    certificates as rows of the two old tables, written in SQL as the previous head defined them."""
    tenant = await service.create_tenant("default", actor="test", signing_alg="ES256")
    await service.create_application(tenant, "orders", actor="test", identifier_uri=RESOURCE, open_to_tenant=True)
    app = await service.create_application(tenant, "worker", actor="test")
    host, identity, _ = await hosts.add_host(tenant, "web1", actor="test")
    app_key, host_key = generate_client_key("p256"), generate_client_key("p256")
    old = Old(tenant=tenant, app=app, identity_client_id=identity.client_id, host_id=host.id, app_key=app_key,
              host_key=host_key, app_cert_id=str(uuid.uuid4()), revoked_cert_id=str(uuid.uuid4()),
              host_cert_id=str(uuid.uuid4()), app_der=b"")
    live = _cert_row(old.app_cert_id, app_key, "worker")
    old.app_der = live["der"]
    revoked = _cert_row(old.revoked_cert_id, generate_client_key("p256"), "old")
    async with engine.begin() as conn:
        insert_client = text(
            "INSERT INTO client_certificates (id, client_id, x5t, x5t_s256, der, subject, key_type, key_size, "
            "not_before, not_after, display_name, created_at, last_used_at, revoked_at) VALUES (:id, :client_id, "
            ":x5t, :x5t_s256, :der, :subject, :key_type, :key_size, :not_before, :not_after, :display_name, "
            ":created_at, :last_used_at, :revoked_at)"
        )
        await conn.execute(insert_client, {**live, "client_id": app.client_id, "display_name": "ci",
                                           "last_used_at": START + 5, "revoked_at": None})
        await conn.execute(insert_client, {**revoked, "client_id": app.client_id, "display_name": "",
                                           "last_used_at": None, "revoked_at": START + 1})
        await conn.execute(
            text("INSERT INTO host_certificates (id, host_id, x5t, x5t_s256, der, subject, key_type, key_size, "
                 "not_before, not_after, created_at) VALUES (:id, :host_id, :x5t, :x5t_s256, :der, :subject, "
                 ":key_type, :key_size, :not_before, :not_after, :created_at)"),
            {**_cert_row(old.host_cert_id, host_key, "web1"), "host_id": host.id},
        )
    return old


async def _made_by_previous_head(engine: AsyncEngine) -> tuple[SqlDirectoryStore, Old, bytes]:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_to(_previous_head()))
        # Today's code records a notification event with each key rotation (making the tenant makes
        # one); the previous head has no outbox yet: lend it the table for the setup only.
        await conn.run_sync(outbox_events.create)
    clock = FrozenClock(START)
    kek = aead.new_key()
    hasher = SecretHasher(aead.derive(kek, "pepper"))
    store = SqlDirectoryStore(engine)
    service = DirectoryService(store, clock, hasher, kek)
    hosts = HostService(SqlHostStore(engine, store), clock, hasher, credentials=service.credentials)
    old = await _fill_previous_head(engine, service, hosts)
    async with engine.begin() as conn:
        await conn.run_sync(outbox_events.drop)
    return store, old, kek


@pytest.fixture
async def migrated(url: str) -> AsyncIterator[tuple[SqlDirectoryStore, Old, bytes]]:
    engine = db.create_engine(url)
    try:
        store, old, kek = await _made_by_previous_head(engine)
        await db.migrate(engine)
        await db.require_head(engine)
        yield store, old, kek
        await store.release()
    finally:
        await engine.dispose()


async def test_every_certificate_row_is_carried_with_its_owner_and_history(
    migrated: tuple[SqlDirectoryStore, Old, bytes],
) -> None:
    store, old, _ = migrated
    c = t.certificates
    async with store.engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(select(c))).all()}
    assert set(rows) == {old.app_cert_id, old.revoked_cert_id, old.host_cert_id}
    live, revoked, host = rows[old.app_cert_id], rows[old.revoked_cert_id], rows[old.host_cert_id]
    assert (live.owner_kind, live.owner_id, live.display_name, live.last_used_at, live.revoked_at) == (
        "application", old.app.client_id, "ci", START + 5, None)
    assert bytes(live.der) == old.app_der
    assert (revoked.owner_kind, revoked.revoked_at) == ("application", START + 1)
    assert (host.owner_kind, host.owner_id, host.display_name, host.last_used_at, host.revoked_at) == (
        "host", old.host_id, "", None, None)
    listed = await store.list_certificates(old.tenant.id, old.app.client_id)
    assert [x.id for x in listed] == [old.app_cert_id]


async def _token(store: SqlDirectoryStore, kek: bytes, old: Old, client_id: str, key: PrivateKey,
                 x5t_s256: str) -> tuple[int, ListSink]:
    clock = FrozenClock(START + 60)
    sink = ListSink()
    service = TokenService(
        directory=store, keyring=KeyRing(store, kek, clock), hasher=SecretHasher(aead.derive(kek, "pepper")),
        clock=clock, sink=sink, replay=store, base_url=BASE_URL,
        throttle=FailureThrottle.in_process(clock, source=Budget(1e9, 1.0), source_client=Budget(1e9, 1.0),
                                            client=Budget(1e9, 1.0)),
    )
    now = clock.now()
    claims = {"iss": client_id, "sub": client_id, "aud": f"{BASE_URL}/{old.tenant.id}/v2.0", "iat": now,
              "exp": now + 300, "jti": str(uuid.uuid4())}
    assertion = sign_with_headers(claims, key, alg="ES256", headers={"typ": "JWT", "x5t#S256": x5t_s256})
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_id": client_id,
            "client_assertion": assertion, "scope": f"{RESOURCE}/.default"}
    result = await service.handle(old.tenant.id, http_request(form))
    return result.status, sink


async def test_carried_application_certificate_still_authenticates(
    migrated: tuple[SqlDirectoryStore, Old, bytes],
) -> None:
    store, old, kek = migrated
    (cert,) = await store.list_certificates(old.tenant.id, old.app.client_id)
    status, sink = await _token(store, kek, old, old.app.client_id, old.app_key, cert.x5t_s256)
    assert status == 200
    assert sink.events[-1].credential_id == old.app_cert_id


async def test_carried_host_certificate_still_authenticates_for_its_identity(
    migrated: tuple[SqlDirectoryStore, Old, bytes],
) -> None:
    store, old, kek = migrated
    record = await store.get_client(old.tenant.id, old.identity_client_id)
    assert record is not None
    (cert,) = record.certificates
    status, sink = await _token(store, kek, old, old.identity_client_id, old.host_key, cert.x5t_s256)
    assert status == 200
    assert sink.events[-1].credential_id == old.host_cert_id


async def test_carried_revoked_certificate_stays_revoked(migrated: tuple[SqlDirectoryStore, Old, bytes]) -> None:
    store, old, _ = migrated
    record = await store.get_client(old.tenant.id, old.app.client_id)
    assert record is not None
    assert old.revoked_cert_id not in {c.id for c in record.certificates}


async def test_downgrade_restores_both_old_tables(url: str) -> None:
    """The migration is reversible: downgrading it puts every row back where it was."""
    engine = db.create_engine(url)
    try:
        store, old, _ = await _made_by_previous_head(engine)
        await db.migrate(engine)

        def down(connection: Connection) -> None:
            cfg = db.alembic_config()
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, _previous_head())

        async with engine.begin() as conn:
            await conn.run_sync(down)
            client_ids = {r[0] for r in (await conn.execute(text("SELECT id FROM client_certificates"))).all()}
            host_rows = (await conn.execute(text("SELECT id, host_id FROM host_certificates"))).all()
        assert client_ids == {old.app_cert_id, old.revoked_cert_id}
        assert [tuple(r) for r in host_rows] == [(old.host_cert_id, old.host_id)]
        await store.release()
    finally:
        await engine.dispose()
