"""Everything one server process holds, built once from `ServerSettings` and shared by the routes."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.clock import Clock, SystemClock
from keyless.crypto import aead
from keyless.crypto.ca import IssuedByCa, IssuedCert
from keyless.directory.federation import FederationService
from keyless.directory.hosts import HostService
from keyless.directory.posture import PostureService
from keyless.directory.service import DirectoryService
from keyless.directory.webhooks import WebhookService
from keyless.domain.credentials import latest_uses
from keyless.domain.events import Event
from keyless.domain.model import AuditEvent, Tenant
from keyless.oauth.context import FederationContext
from keyless.oauth.federation.issuers import IssuerKeys
from keyless.oauth.keyring import KeyRing
from keyless.oauth.metadata import issuer
from keyless.oauth.policy_check import SignInPolicy
from keyless.oauth.ratelimit import Budget, FailureThrottle
from keyless.oauth.service import TokenService
from keyless.server.batching import BatchWriter
from keyless.server.bearer import BearerVerifier
from keyless.server.client_address import Network
from keyless.server.datadir import CA_KEY_AAD, DataDir, load_kek, secret_hasher
from keyless.server.eager import Turn
from keyless.server.federation_fetch import HttpMetadataFetcher
from keyless.server.metrics import CHANGE_PROPAGATION
from keyless.server.outbox_worker import EndpointLimits, OutboxWorker
from keyless.server.settings import ServerSettings
from keyless.server.signin_log import SignInBatcher
from keyless.server.webhook_sender import WebhookSender
from keyless.store import db
from keyless.store.cache import CachedDirectory, CachedFederationReader, CachedPolicies
from keyless.store.changes import ChangeFeed
from keyless.store.directory import SqlDirectoryStore
from keyless.store.failures import shared_throttle
from keyless.store.federation import SqlFederationStore
from keyless.store.hosts import SqlHostStore
from keyless.store.installation import agree_public_url
from keyless.store.outbox import SqlOutbox
from keyless.store.posture import SqlPostureStore
from keyless.store.vault import SqlVaultStore
from keyless.store.webhooks import SqlWebhookStore
from keyless.vault.service import VaultService


@dataclass
class ServerContext:
    settings: ServerSettings
    clock: Clock
    engine: AsyncEngine
    store: SqlDirectoryStore
    directory: CachedDirectory
    keyring: KeyRing
    tokens: TokenService
    admin: DirectoryService
    signins: SignInBatcher
    base_url: str
    bearers: BearerVerifier
    vaults: VaultService
    audits: BatchWriter[AuditEvent]
    vault_resource: str
    kek: bytes = field(repr=False, default=b"")
    federation: FederationService | None = None
    issuer_keys: IssuerKeys | None = None
    fetcher: HttpMetadataFetcher | None = None
    ready: bool = field(default=False)
    _ca: IssuedCert | None = field(default=None, repr=False)
    hosts: HostService | None = field(default=None, repr=False)
    changes: ChangeFeed | None = field(default=None, repr=False)  # set by `open`; None only in hand-built contexts
    posture: PostureService | None = field(default=None, repr=False)  # made on first use: `posture_service`
    outbox: SqlOutbox | None = field(default=None, repr=False)
    webhooks: WebhookService | None = field(default=None, repr=False)
    outbox_worker: OutboxWorker | None = field(default=None, repr=False)
    webhook_sender: WebhookSender | None = field(default=None, repr=False)
    # Events seen on a hot path (a sign-in in audit mode): recorded without I/O, written in batches.
    events: BatchWriter[Event] | None = field(default=None, repr=False)
    # Each authenticated agent call: (host certificate id, time, source), written in batches as the
    # certificate's last use, which is how a silent agent is noticed (docs/notifications.md).
    contacts: BatchWriter[tuple[str, float, str | None]] | None = field(default=None, repr=False)
    trusted_proxies: tuple[Network, ...] = ()  # settings.trusted_proxies, parsed once (server.client_address)
    # The listener's eager steps, and the turn's token signatures made back to back (`eager.Turn`).
    turn: Turn = field(default_factory=Turn, repr=False)

    def ca(self) -> IssuedCert:
        """The local CA, opened from the data directory on first use (sealed under the KEK)."""
        if self._ca is None:
            data = DataDir(self.settings.data_dir)
            key_der = aead.open_sealed(self.kek, data.ca_key.read_bytes(), CA_KEY_AAD)
            self._ca = IssuedCert(cert_pem=data.ca_cert.read_bytes(), key_der=key_der)
        return self._ca

    def posture_service(self) -> PostureService:
        """The process's one posture service: its cache of the sign-in window's facts serves every page
        of a report, from the API and the console alike."""
        if self.posture is None:
            self.posture = PostureService(SqlPostureStore(self.engine), self.clock)
        return self.posture

    def issuer(self, tenant: Tenant) -> str:
        return issuer(self.base_url, tenant)

    @classmethod
    async def open(cls, settings: ServerSettings, *, clock: Clock | None = None,
                   bound_port: int | None = None) -> ServerContext:
        clock = clock or SystemClock()
        data = DataDir(settings.data_dir)
        config = data.read_config()
        kek = load_kek(data, allow_loose=settings.insecure_world_readable_files)
        url = settings.database_url or config.get("database_url") or db.sqlite_url(data.sqlite)
        engine = db.create_engine(url)
        try:
            await db.require_head(engine)
        except Exception:
            await engine.dispose()
            raise
        store = SqlDirectoryStore(engine)
        directory = CachedDirectory(store, clock, ttl=settings.cache_ttl)
        keyring = KeyRing(store, kek, clock, ttl=min(30.0, max(settings.cache_ttl, 1.0)))
        hasher = secret_hasher(kek)
        signins = SignInBatcher(store, settings.signin_flush_interval)
        try:
            base_url = await agree_public_url(
                engine, settings.base_url(config.get("server_url"), bound_port), move=settings.move_public_url
            )
            await store.prepare()  # SQLite: a second server on the same database stops here
        except Exception:
            await store.release()
            await engine.dispose()
            raise

        vault_store = SqlVaultStore(engine)
        audits: BatchWriter[AuditEvent] = BatchWriter(vault_store.record_audits, settings.signin_flush_interval,
                                                      name="audit")
        vaults = VaultService(vault_store, clock, kek, audit_sink=audits.record, cache_ttl=settings.cache_ttl)
        fed_store = SqlFederationStore(engine)
        host_store = SqlHostStore(engine, store)
        fed_reader = CachedFederationReader(fed_store, clock, ttl=settings.cache_ttl)
        fetcher = HttpMetadataFetcher(ca_bundle=settings.federation_ca_bundle,
                                      allow_private=settings.allow_private_issuers)
        issuer_keys = IssuerKeys(fetcher, clock, refresh_interval=settings.federation_key_refresh_interval)

        policies = CachedPolicies(store, clock, ttl=settings.cache_ttl)
        internal_ca = IssuedByCa(data.ca_cert.read_bytes()) if data.ca_cert.exists() else None

        posture = PostureService(SqlPostureStore(engine), clock)

        def clear_caches() -> None:
            posture.answers.invalidate()
            policies.invalidate()
            directory.invalidate()
            keyring.invalidate()
            vaults.invalidate()
            fed_reader.invalidate()

        changes = ChangeFeed(engine, clear_caches, on_lag=CHANGE_PROPAGATION.observe)
        outbox = SqlOutbox(engine, clock)
        sender = WebhookSender(allow_private=settings.webhook_allow_private, ca_bundle=settings.webhook_ca_bundle)
        worker = OutboxWorker(outbox, sender, kek, clock, poll_interval=settings.outbox_poll_interval,
                              limits=EndpointLimits(clock, concurrency=settings.webhook_endpoint_concurrency,
                                                    per_second=settings.webhook_endpoint_rate,
                                                    burst=settings.webhook_endpoint_burst))

        async def emit_batch(batch: list[Event]) -> None:
            await outbox.emit(batch)
            worker.wake()

        events: BatchWriter[Event] = BatchWriter(emit_batch, settings.signin_flush_interval, name="events")

        async def contacts_batch(batch: list[tuple[str, float, str | None]]) -> None:
            await store.mark_used("certificate", latest_uses([("certificate", *c) for c in batch])["certificate"])

        contacts: BatchWriter[tuple[str, float, str | None]] = BatchWriter(
            contacts_batch, settings.signin_flush_interval, name="agent-contacts")

        def on_change() -> None:
            """A write committed in this replica: clear here at once, tell the others, and let the outbox
            worker look for events the write may have emitted."""
            clear_caches()
            changes.publish()
            worker.wake()

        vaults.on_change = changes.publish

        budgets = {"source": Budget(settings.source_failure_burst, settings.source_failure_rate),
                   "source_client": settings.source_client_budget(),
                   "client": Budget(settings.client_failure_burst, settings.client_failure_rate)}
        # One budget across replicas on PostgreSQL; SQLite is one process's database.
        throttle = (shared_throttle(engine, clock, **budgets) if engine.dialect.name == "postgresql"
                    else FailureThrottle.in_process(clock, **budgets))
        sign_in_policy = SignInPolicy(policies, directory, fed_reader, internal_ca, events=events.record,
                                      clock=clock)
        turn = Turn()

        tokens = TokenService(
            directory=directory, keyring=keyring, hasher=hasher, clock=clock, sink=signins, replay=store,
            base_url=base_url,
            throttle=throttle,
            federation=FederationContext(credentials=fed_reader, issuer_keys=issuer_keys),
            after_client_auth=(("policy", sign_in_policy.step),),
            defer=turn.later,  # a turn's public-key operations back to back (`eager.Turn`)
        )
        admin = DirectoryService(store, clock, hasher, kek, on_change, internal_ca=internal_ca, policy_store=store)
        return cls(
            settings=settings, clock=clock, engine=engine, store=store, directory=directory, keyring=keyring,
            tokens=tokens, admin=admin, signins=signins, turn=turn,
            base_url=base_url, kek=kek, bearers=BearerVerifier(keyring, clock, base_url), vaults=vaults,
            audits=audits, vault_resource=settings.vault_resource(),
            hosts=HostService(host_store, clock, hasher, on_change, credentials=admin.credentials),
            federation=FederationService(fed_store, store, clock, on_change, identities=host_store,
                                         credentials=admin.credentials),
            issuer_keys=issuer_keys, fetcher=fetcher, changes=changes, outbox=outbox, outbox_worker=worker,
            webhooks=WebhookService(SqlWebhookStore(engine), clock, kek, sender.guard.refusal, on_change),
            webhook_sender=sender, events=events, contacts=contacts, trusted_proxies=settings.proxy_networks(),
            posture=posture,
        )

    async def close(self) -> None:
        if self.changes is not None:
            await self.changes.close()
        await self.signins.close()
        await self.audits.close()
        if self.events is not None:
            await self.events.close()
        if self.contacts is not None:
            await self.contacts.close()
        if self.fetcher is not None:
            await self.fetcher.aclose()
        if self.webhook_sender is not None:
            await self.webhook_sender.aclose()
        await self.store.release()
        await self.engine.dispose()
