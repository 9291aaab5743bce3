"""What `keyless init` puts in a new directory: the tenant, its management API as a resource with
admin roles, and the CLI's own application granted the admin role.

The CLI is an application like any other: it gets tokens from this server with its own credential
and calls the management API with them. No password, no special path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keyless.directory.management import ADMIN_ROLE, MANAGEMENT_URI, READER_ROLE
from keyless.directory.service import DirectoryService
from keyless.domain.model import Application, Tenant

__all__ = ["ADMIN_ROLE", "MANAGEMENT_URI", "READER_ROLE", "Bootstrap", "bootstrap"]

INIT_ACTOR = "keyless-init"


@dataclass(frozen=True)
class Bootstrap:
    tenant: Tenant
    management: Application
    cli: Application
    cli_secret: str = field(repr=False)
    cli_secret_expires_at: float = 0.0


async def bootstrap(
    service: DirectoryService, *, tenant_name: str = "default", signing_alg: str = "RS256"
) -> Bootstrap:
    tenant = await service.create_tenant(tenant_name, actor=INIT_ACTOR, signing_alg=signing_alg)
    management = await service.create_application(
        tenant, "Keyless management API", actor=INIT_ACTOR, identifier_uri=MANAGEMENT_URI,
        roles=[ADMIN_ROLE, READER_ROLE],
    )
    cli = await service.create_application(tenant, "Keyless CLI (admin)", actor=INIT_ACTOR)
    record, plaintext = await service.add_secret(
        tenant, cli.client_id, actor=INIT_ACTOR, expires_in=tenant.max_secret_lifetime,
        display_name="keyless init",
    )
    await service.grant(tenant, cli.client_id, MANAGEMENT_URI, ADMIN_ROLE, actor=INIT_ACTOR)
    return Bootstrap(tenant=tenant, management=management, cli=cli, cli_secret=plaintext,
                     cli_secret_expires_at=record.expires_at)
