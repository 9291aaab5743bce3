"""In-memory test doubles for the protocol core: a `DirectoryReader` with a small builder API, a
sign-in sink that keeps what it is given, and a `TokenService` factory wired with a `FrozenClock`.

The fake mirrors the SQL store's observable rules (tenant by id or lower-cased name, client lookup by
`client_id` only, revoked secrets invisible, resources found by identifier URI or client id, `None`
for "no assignment") so that tests written against it exercise the same code paths as production.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from keyless.clock import FrozenClock
from keyless.crypto import aead
from keyless.crypto.certificates import load_certificate
from keyless.crypto.secrets import SecretHasher, hint, new_client_secret
from keyless.domain.model import (
    Application,
    AppRole,
    Certificate,
    ClientRecord,
    ClientSecret,
    RoleAssignment,
    SignInEvent,
    SigningKey,
    Tenant,
)
from keyless.ids import is_guid
from keyless.oauth.deferral import Deferral, at_once
from keyless.oauth.keyring import KeyRing, new_signing_key
from keyless.oauth.ratelimit import Budget, FailureThrottle
from keyless.oauth.request import FORM, TokenHttpRequest
from keyless.oauth.service import TokenService

PEPPER = bytes(range(32))
START = 1_800_000_000.0
BASE_URL = "https://keyless.test"


def guid() -> str:
    return str(uuid.uuid4())


class FakeDirectory:
    """A `keyless.domain.ports.DirectoryReader` over dicts, recording every call."""

    def __init__(self, hasher: SecretHasher, kek: bytes, clock: FrozenClock) -> None:
        self.hasher = hasher
        self.kek = kek
        self.clock = clock
        self.tenants: dict[str, Tenant] = {}
        self.apps: dict[tuple[str, str], Application] = {}
        self.secrets: dict[str, list[ClientSecret]] = {}
        self.certificates: dict[str, list[Certificate]] = {}
        self.revoked: set[str] = set()
        self.assignments: list[RoleAssignment] = []
        self.keys: dict[str, list[SigningKey]] = {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    # -- builder -----------------------------------------------------------------------------------
    def add_tenant(self, name: str = "contoso", *, alg: str = "ES256", token_lifetime: int = 3600,
                   with_key: bool = True) -> Tenant:
        tenant = Tenant(id=guid(), name=name, signing_alg=alg, token_lifetime=token_lifetime,
                        created_at=self.clock.now())
        self.tenants[tenant.id] = tenant
        self.keys[tenant.id] = []
        if with_key:
            self.add_key(tenant, activates_in=0)
        return tenant

    def add_key(self, tenant: Tenant, *, activates_in: float = 0, alg: str | None = None) -> SigningKey:
        now = self.clock.now()
        key = new_signing_key(tenant.id, alg or tenant.signing_alg, self.kek, now=now, activates_at=now + activates_in)
        self.keys[tenant.id].append(key)
        return key

    def set_retire(self, tenant: Tenant, kid: str, at: float) -> None:
        self.keys[tenant.id] = [replace(k, retire_at=at) if k.kid == kid else k for k in self.keys[tenant.id]]

    def add_app(self, tenant: Tenant, name: str = "app", *, identifier_uri: str | None = None,
                roles: Sequence[str] = (), open_to_tenant: bool = False, enabled: bool = True) -> Application:
        app = Application(
            client_id=guid(), tenant_id=tenant.id, display_name=name, object_id=guid(), enabled=enabled,
            identifier_uri=identifier_uri, open_to_tenant=open_to_tenant,
            roles=tuple(AppRole(id=guid(), value=r) for r in roles), created_at=self.clock.now(),
        )
        self.apps[(tenant.id, app.client_id)] = app
        self.secrets[app.client_id] = []
        return app

    def set_enabled(self, app: Application, enabled: bool) -> Application:
        updated = replace(app, enabled=enabled)
        self.apps[(app.tenant_id, app.client_id)] = updated
        return updated

    def add_secret(self, app: Application, *, lifetime: float = 86400, plaintext: str | None = None) -> str:
        plaintext = plaintext or new_client_secret()
        now = self.clock.now()
        self.secrets[app.client_id].append(
            ClientSecret(id=guid(), client_id=app.client_id, hint=hint(plaintext),
                         digest=self.hasher.digest(plaintext), pepper_id=self.hasher.pepper_id,
                         created_at=now, expires_at=now + lifetime)
        )
        return plaintext

    def add_certificate(self, app: Application, pem: bytes) -> Certificate:
        info = load_certificate(pem)
        cert = Certificate(
            id=guid(), owner_id=app.client_id, x5t=info.x5t, x5t_s256=info.x5t_s256, der=info.der,
            subject=info.subject, key_type=info.key_type, key_size=info.key_size, not_before=info.not_before,
            not_after=info.not_after, created_at=self.clock.now(),
        )
        self.certificates.setdefault(app.client_id, []).append(cert)
        return cert

    def revoke_all_secrets(self, app: Application) -> None:
        self.revoked.update(s.id for s in self.secrets[app.client_id])

    def grant(self, client: Application, resource: Application, role: str) -> None:
        found = resource.role(role)
        assert found is not None, f"{resource.display_name} has no role {role}"
        self.assignments.append(
            RoleAssignment(id=guid(), tenant_id=client.tenant_id, principal_object_id=client.object_id,
                           principal_client_id=client.client_id, resource_client_id=resource.client_id,
                           role_id=found.id, role_value=found.value, created_at=self.clock.now())
        )

    # -- DirectoryReader ---------------------------------------------------------------------------
    async def get_tenant(self, name_or_id: str) -> Tenant | None:
        self.calls.append(("get_tenant", (name_or_id,)))
        ref = name_or_id.lower()
        if is_guid(name_or_id):
            return self.tenants.get(ref)
        return next((t for t in self.tenants.values() if t.name == ref), None)

    async def get_client(self, tenant_id: str, client_id: str) -> ClientRecord | None:
        self.calls.append(("get_client", (tenant_id, client_id)))
        app = self.apps.get((tenant_id, client_id))
        if app is None:
            return None
        live = tuple(s for s in self.secrets[client_id] if s.id not in self.revoked)
        certs = tuple(c for c in self.certificates.get(client_id, []) if c.id not in self.revoked)
        return ClientRecord(app=app, secrets=live, certificates=certs)

    async def get_application(self, tenant_id: str, client_id: str) -> Application | None:
        self.calls.append(("get_application", (tenant_id, client_id)))
        return self.apps.get((tenant_id, client_id))

    async def find_resource(self, tenant_id: str, identifier: str) -> Application | None:
        self.calls.append(("find_resource", (tenant_id, identifier)))
        for (tid, client_id), app in self.apps.items():
            if tid == tenant_id and (app.identifier_uri == identifier or client_id == identifier):
                return app
        return None

    async def assigned_roles(
        self, tenant_id: str, principal_object_id: str, resource_client_id: str
    ) -> tuple[str, ...] | None:
        self.calls.append(("assigned_roles", (tenant_id, principal_object_id, resource_client_id)))
        rows = [a for a in self.assignments if a.tenant_id == tenant_id
                and a.principal_object_id == principal_object_id and a.resource_client_id == resource_client_id]
        if not rows:
            return None
        return tuple(sorted(a.role_value for a in rows))

    async def signing_keys(self, tenant_id: str) -> Sequence[SigningKey]:
        self.calls.append(("signing_keys", (tenant_id,)))
        return sorted(self.keys.get(tenant_id, []), key=lambda k: k.activates_at)

    def call_count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)


@dataclass
class ListSink:
    events: list[SignInEvent] = field(default_factory=list)

    def record(self, event: SignInEvent) -> None:
        self.events.append(event)

    @property
    def last(self) -> SignInEvent:
        return self.events[-1]


@dataclass
class World:
    """One tenant with a resource (role Data.Read), a granted client with a secret, and the service."""

    clock: FrozenClock
    hasher: SecretHasher
    kek: bytes
    directory: FakeDirectory
    keyring: KeyRing
    sink: ListSink
    service: TokenService
    throttle: FailureThrottle
    tenant: Tenant
    resource: Application
    client: Application
    secret: str

    RESOURCE_URI = "api://orders"

    def issuer(self) -> str:
        return f"{BASE_URL}/{self.tenant.id}/v2.0"

    def form(self, **params: str) -> dict[str, str]:
        """A valid client_secret_post request, with `params` overriding or adding fields."""
        base = {"grant_type": "client_credentials", "client_id": self.client.client_id,
                "client_secret": self.secret, "scope": f"{self.RESOURCE_URI}/.default"}
        base.update(params)
        return {k: v for k, v in base.items() if v is not None}


def make_world(*, source_burst: float = 1e9, client_burst: float = 1e9, source_rate: float = 0.5,
               client_rate: float = 2.0, pair_burst: float = 1e9, pair_rate: float = 0.1,
               token_lifetime: int = 3600, defer: Deferral = at_once) -> World:
    clock = FrozenClock(START)
    hasher = SecretHasher(PEPPER)
    kek = aead.new_key()
    directory = FakeDirectory(hasher, kek, clock)
    tenant = directory.add_tenant(token_lifetime=token_lifetime)
    resource = directory.add_app(tenant, "orders", identifier_uri=World.RESOURCE_URI, roles=("Data.Read", "Data.Write"))
    client = directory.add_app(tenant, "worker")
    secret = directory.add_secret(client)
    directory.grant(client, resource, "Data.Read")
    keyring = KeyRing(directory, kek, clock)
    sink = ListSink()
    throttle = FailureThrottle.in_process(clock, source=Budget(source_burst, source_rate),
                                          source_client=Budget(pair_burst, pair_rate),
                                          client=Budget(client_burst, client_rate))
    service = TokenService(
        directory=directory, keyring=keyring, hasher=hasher, clock=clock, sink=sink, replay=MemoryOneTimeUses(),
        base_url=BASE_URL, throttle=throttle, defer=defer,
    )
    return World(clock=clock, hasher=hasher, kek=kek, directory=directory, keyring=keyring, sink=sink,
                 service=service, throttle=throttle, tenant=tenant,
                 resource=resource, client=client, secret=secret)


class MemoryOneTimeUses:
    """The single-use port in memory (the SQL implementation has its own tests on both engines)."""

    def __init__(self) -> None:
        self.used: set[tuple[str, str, str]] = set()

    async def consume(self, kind: str, owner: str, value: str, expires_at: float) -> bool:
        key = (kind, owner, value)
        if key in self.used:
            return False
        self.used.add(key)
        return True


def http_request(
    params: dict[str, str] | list[tuple[str, str]] | None = None,
    *,
    body: bytes | None = None,
    method: str = "POST",
    content_type: str | None = FORM,
    authorization: str | None = None,
    query: bytes = b"",
    source: str | None = "10.0.0.1",
) -> TokenHttpRequest:
    if body is None:
        body = urlencode(params or {}).encode("ascii")
    return TokenHttpRequest(method=method, content_type=content_type, authorization=authorization, query=query,
                            body=body, source=source)
