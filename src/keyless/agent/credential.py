"""The host credential: a key pair made on this host and the CA's certificate for it; enrollment
with a join token, renewal at half the certificate's lifetime with a fresh key.

Renewal is invisible to workloads: the new key and certificate replace the old ones in memory in
one assignment, after the server issued the certificate and the state file was rewritten; the
server keeps the previous certificate valid, so assertions signed a moment earlier still pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from keyless.agent.server_api import Enrolled, ServerApi
from keyless.agent.state import HostInfo, StateDir
from keyless.client.assertions import build_client_assertion
from keyless.client.auth import AssertionAuth
from keyless.crypto.certificates import load_certificate
from keyless.crypto.client_keys import ClientKeyKind, certificate_signing_request, generate_client_key
from keyless.crypto.keys import PrivateKey

KEY_KIND: ClientKeyKind = "p256"  # ES256: cheap to sign (one assertion per token refresh), accepted everywhere
RENEW_AT = 0.5  # fraction of the certificate's lifetime after which the agent renews


@dataclass(frozen=True)
class Material:
    key: PrivateKey = field(repr=False)
    certificate_pem: bytes
    not_before: float
    not_after: float

    @classmethod
    def of(cls, key: PrivateKey, certificate_pem: bytes) -> Material:
        info = load_certificate(certificate_pem)
        return cls(key=key, certificate_pem=certificate_pem, not_before=info.not_before, not_after=info.not_after)

    @property
    def renew_at(self) -> float:
        return self.not_before + (self.not_after - self.not_before) * RENEW_AT


class HostCredential:
    """The current key and certificate. After a renewal the previous key keeps signing for
    `grace` seconds: other server replicas may still hold the host's certificate list from before
    the renewal in their short-lived caches, and the previous certificate stays valid on the server."""

    def __init__(self, host: HostInfo, material: Material, *, grace: float = 0.0) -> None:
        self.host = host
        self.material = material
        self.grace = grace
        self._previous: Material | None = None
        self._previous_until = 0.0

    def signing(self) -> Material:
        previous = self._previous
        if previous is not None and time.monotonic() < self._previous_until:
            return previous
        return self.material

    def assertion(self, client_id: str, audience: str | None = None) -> str:
        """A single-use assertion for `client_id` (the server checks this host may act for it), for
        `audience` (the tenant's issuer unless given). Wire timestamps come from the system clock: they
        are checked by the server's."""
        m = self.signing()
        return build_client_assertion(client_id=client_id, audience=audience or self.host.issuer, private_key=m.key,
                                      certificate_pem=m.certificate_pem, lifetime=120, now=time.time())

    def client_auth(self, client_id: str) -> AssertionAuth:
        """How a token request authenticates as `client_id`: `keyless.client`'s `private_key_jwt`,
        signing a fresh assertion with the current host key for every request."""
        return AssertionAuth(client_id, sign=lambda audience: self.assertion(client_id, audience))

    async def renew(self, api: ServerApi, state: StateDir) -> Material:
        key = generate_client_key(KEY_KIND)
        csr = certificate_signing_request(key, f"host:{self.host.host_name}")
        done = await api.renew(self.assertion(self.host.system_client_id), csr)
        material = Material.of(key, done.certificate_pem)
        state.save(key, done.certificate_pem)
        self._previous, self._previous_until = self.signing(), time.monotonic() + self.grace
        self.material = material
        return material


async def enroll(api: ServerApi, state: StateDir, join_token: str, *, grace: float = 0.0) -> HostCredential:
    """Make the host key here, send only its CSR with the join token, keep the certificate."""
    key = generate_client_key(KEY_KIND)
    done: Enrolled = await api.enroll(join_token, certificate_signing_request(key, "keyless-agent"))
    host = HostInfo(server=api.server, tenant_id=done.tenant_id, host_id=done.host_id, host_name=done.host_name,
                    system_client_id=done.system_client_id, issuer=done.issuer, token_endpoint=done.token_endpoint)
    state.save(key, done.certificate_pem, host)
    return HostCredential(host, Material.of(key, done.certificate_pem), grace=grace)


def load(state: StateDir, *, grace: float = 0.0) -> HostCredential:
    key, cert, host = state.load()
    return HostCredential(host, Material.of(key, cert), grace=grace)
