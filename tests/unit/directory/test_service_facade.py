"""`DirectoryService` only wires the per-aggregate services (directory/service.py): every public
method of theirs that the management API and CLI used to call on it is still offered there, bound
to the aggregate's own method, so no rule lives in two places."""

from __future__ import annotations

import inspect

from keyless.directory.applications import ApplicationService
from keyless.directory.assignments import GrantService
from keyless.directory.credentials import CredentialService
from keyless.directory.logs import LogService
from keyless.directory.signing_keys import SigningKeyService
from keyless.directory.tenants import TenantService
from tests.unit.directory.conftest import Env

# Added with the credential model; reached as `service.credentials.<name>`, not flattened.
NOT_FLATTENED = {"inventory", "issue_host_certificate", "record", "record_host_certificate", "retire",
                 "host_certificates", "add_federated", "remove_federated", "disable_unused", "revoked_before",
                 "delete_revoked"}


def test_every_aggregate_method_is_forwarded_to_the_aggregate_itself(env: Env) -> None:
    facade = env.service
    parts = {TenantService: facade.tenants, ApplicationService: facade.applications,
             CredentialService: facade.credentials, GrantService: facade.grants,
             SigningKeyService: facade.signing_keys, LogService: facade.logs}
    for cls, part in parts.items():
        assert type(part) is cls
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_") or name in NOT_FLATTENED:
                continue
            forwarded = getattr(facade, name)
            assert forwarded.__self__ is part and forwarded.__func__ is member, (cls.__name__, name)
