"""Who may use which identity: system and unbound identities for anyone, bound ones only for
matching socket callers, and the same answer for forbidden and unknown."""

from __future__ import annotations

import os

from keyless.agent.entitlements import Entitlements
from keyless.agent.peer import Peer

SYSTEM = {"client_id": "c-sys", "object_id": "o-sys", "name": "h1", "kind": "system", "resource_id": "/x/hosts/h1"}
BOUND = {"client_id": "c-b", "object_id": "o-b", "name": "billing", "kind": "user",
         "resource_id": "/X/userAssignedIdentities/billing"}
FREE = {"client_id": "c-f", "object_id": "o-f", "name": "free", "kind": "user", "resource_id": "/x/uai/free"}
ME = Peer(pid=os.getpid(), uid=os.getuid(), gid=os.getgid())
OTHER = Peer(pid=os.getpid(), uid=os.getuid() + 4242, gid=os.getgid())


def _ents() -> Entitlements:
    return Entitlements.of({"identities": [SYSTEM, BOUND, FREE],
                            "bindings": [{"identity_client_id": "c-b", "uid": os.getuid()}]})


def test_default_is_the_system_identity_over_tcp_and_for_unbound_callers() -> None:
    ents = _ents()
    assert ents.resolve(None, None) is not None and ents.resolve(None, None).client_id == "c-sys"  # type: ignore[union-attr]
    assert ents.resolve(None, OTHER).client_id == "c-sys"  # type: ignore[union-attr]


def test_bound_caller_gets_its_identity_by_default_and_by_any_reference() -> None:
    ents = _ents()
    assert ents.resolve(None, ME).client_id == "c-b"  # type: ignore[union-attr]
    for ref in ("c-b", "o-b", BOUND["resource_id"], BOUND["resource_id"].lower()):
        assert ents.resolve(ref, ME).client_id == "c-b", ref  # type: ignore[union-attr]


def test_bound_identity_is_refused_to_others_and_to_unidentified_callers_like_an_unknown_one() -> None:
    ents = _ents()
    assert ents.resolve("c-b", OTHER) is None
    assert ents.resolve("c-b", None) is None
    assert ents.resolve("no-such", ME) is None


def test_tcp_callers_match_uid_only_bindings() -> None:
    from keyless.agent.endpoints import tcp_caller

    ents = _ents()
    assert ents.resolve("c-b", tcp_caller(os.getuid())).client_id == "c-b"  # type: ignore[union-attr]
    assert ents.resolve("c-b", tcp_caller(os.getuid() + 1)) is None
    default = ents.resolve(None, tcp_caller(os.getuid()), bound_default=False)
    assert default is not None and default.client_id == "c-sys"  # on TCP the default is system-assigned
    narrower = Entitlements.of({"identities": [SYSTEM, BOUND], "bindings": [
        {"identity_client_id": "c-b", "uid": os.getuid(), "gid": os.getgid()}]})
    assert narrower.resolve("c-b", tcp_caller(os.getuid())) is None  # the gid cannot be checked on TCP
    assert narrower.resolve("c-b", ME) is not None


def test_unbound_user_identity_is_served_to_any_local_caller() -> None:
    ents = _ents()
    assert ents.resolve("c-f", None).client_id == "c-f"  # type: ignore[union-attr]
    assert ents.resolve("o-f", OTHER).client_id == "c-f"  # type: ignore[union-attr]


def test_exe_selector() -> None:
    exe = os.readlink(f"/proc/{os.getpid()}/exe")
    ents = Entitlements.of({"identities": [SYSTEM, BOUND], "bindings": [
        {"identity_client_id": "c-b", "exe": exe}]})
    assert ents.resolve("c-b", ME) is not None
    wrong = Entitlements.of({"identities": [SYSTEM, BOUND], "bindings": [
        {"identity_client_id": "c-b", "uid": os.getuid(), "exe": "/usr/bin/false"}]})
    assert wrong.resolve("c-b", ME) is None  # every selector must match
