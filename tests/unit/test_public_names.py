"""No two public classes of Keyless share a name (issue 12 item 5): an import that picks the wrong
`Finding` or `Outcome` type-checks when both have the same fields, and a reader cannot tell from a
name which one a module means. The error classes are held to this in tests/unit/test_error_family.py;
this holds every public class to it.

One exception is named here, and only this one: the client SDK's synchronous and asynchronous
credentials share their names on purpose (`keyless.client` and `keyless.client.aio`, as azure-identity
spells `azure.identity` and `azure.identity.aio`, so code moves between them by changing one import).
The last clashes are gone: posture's records are `PostureFacts` and `RiskFinding`, the policies'
finding is `PolicyFinding`, and `keyless.leaks.scanner.Finding` stays the offline scanner's public
result."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import defaultdict

import keyless

SDK_MIRRORS = {name: {"keyless.client.aio", "keyless.client.credentials"} for name in (
    "CertificateCredential", "ClientSecretCredential", "ManagedIdentityCredential", "WorkloadIdentityCredential")}


def _shared_names() -> dict[str, set[str]]:
    by_name: dict[str, set[str]] = defaultdict(set)
    for info in pkgutil.walk_packages(keyless.__path__, "keyless."):
        if ".migrations." in info.name:
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and not obj.__name__.startswith("_"):
                by_name[obj.__name__].add(obj.__module__)
    return {name: modules for name, modules in by_name.items() if len(modules) > 1}


def test_no_two_public_classes_share_a_name() -> None:
    assert _shared_names() == SDK_MIRRORS
