"""What this host may hand out: its identities (from the server) and who may use which.

Rules, enforced on every request:
- the system-assigned identity: any local caller (as on an Azure VM);
- a user-assigned identity with no workload binding on this host: any local caller;
- a user-assigned identity with bindings: only callers that match one of them. On the Unix socket
  the kernel names the caller's pid, uid and gid; on TCP the agent knows only the uid owning the
  client socket, so there only bindings that select by uid alone can match.
An identity a caller may not use is answered exactly like one that does not exist (catalog F08).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from keyless.agent.peer import Peer, PeerBinding, bound_identities


@dataclass(frozen=True)
class Identity:
    client_id: str
    object_id: str
    name: str
    kind: str
    resource_id: str


@dataclass(frozen=True)
class Entitlements:
    identities: tuple[Identity, ...] = ()
    bindings: tuple[PeerBinding, ...] = ()
    _by_ref: Mapping[str, Identity] = field(default_factory=dict, repr=False)
    _bound: frozenset[str] = frozenset()

    @classmethod
    def of(cls, view: Mapping[str, Any]) -> Entitlements:
        identities = tuple(
            Identity(client_id=str(i["client_id"]), object_id=str(i["object_id"]), name=str(i["name"]),
                     kind=str(i["kind"]), resource_id=str(i["resource_id"]))
            for i in view.get("identities", ())
        )
        bindings = tuple(
            PeerBinding(identity_client_id=str(b["identity_client_id"]), uid=b.get("uid"), gid=b.get("gid"),
                    exe=b.get("exe"), unit=b.get("unit"))
            for b in view.get("bindings", ())
        )
        by_ref: dict[str, Identity] = {}
        for i in identities:
            by_ref[i.client_id] = by_ref[i.object_id] = by_ref[i.resource_id.lower()] = i
        return cls(identities=identities, bindings=bindings, _by_ref=by_ref,
                   _bound=frozenset(b.identity_client_id for b in bindings))

    @cached_property  # asked on every default-identity request; the entitlements never change
    def system(self) -> Identity | None:
        return next((i for i in self.identities if i.kind == "system"), None)

    def lookup(self, ref: str) -> Identity | None:
        return self._by_ref.get(ref) or self._by_ref.get(ref.lower())

    def resolve(self, ref: str | None, peer: Peer | None, *, bound_default: bool = True) -> Identity | None:
        """The identity a caller asked for (`ref`: client id, object id or resource id; None for the
        default), if it may use it. The default is the caller's bound identity when `bound_default`
        (the socket), else the system-assigned one (as on Azure's IMDS)."""
        if ref is None:
            if peer is not None and bound_default:
                for client_id in bound_identities(self.bindings, peer):
                    found = self._by_ref.get(client_id)
                    if found is not None:
                        return found
            return self.system
        identity = self.lookup(ref)
        if identity is None or identity.client_id not in self._bound:
            return identity
        if peer is None:
            return None
        return identity if identity.client_id in bound_identities(self.bindings, peer) else None

    def names(self) -> Sequence[str]:
        return [i.name for i in self.identities]
