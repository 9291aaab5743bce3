"""What `keyless init` puts in a new directory: the tenant, its management API as a resource with
admin roles, and the CLI's own application granted the admin role.

The CLI is an application like any other: it gets tokens from this server with its own credential
and calls the management API with them. No password, no special path. Its credential is a
certificate issued by the local CA for a key pair that `init` made on this host: only the certificate
is registered, and no client secret exists in a new installation.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyless.crypto.ca import IssuedCert
from keyless.directory.management import ADMIN_ROLE, MANAGEMENT_URI, READER_ROLE
from keyless.directory.service import DirectoryService
from keyless.domain.model import Application, Certificate, Tenant

__all__ = ["ADMIN_ROLE", "MANAGEMENT_URI", "READER_ROLE", "Bootstrap", "bootstrap"]

INIT_ACTOR = "keyless-init"


@dataclass(frozen=True)
class Bootstrap:
    tenant: Tenant
    management: Application
    cli: Application
    cli_certificate: Certificate
    cli_certificate_pem: bytes


async def bootstrap(
    service: DirectoryService, *, ca: IssuedCert, cli_csr: bytes, tenant_name: str = "default",
    signing_alg: str = "RS256",
) -> Bootstrap:
    """`cli_csr` is a CSR for the CLI's key pair; `ca` (the local CA, key included) issues its certificate."""
    tenant = await service.create_tenant(tenant_name, actor=INIT_ACTOR, signing_alg=signing_alg)
    management = await service.create_application(
        tenant, "Keyless management API", actor=INIT_ACTOR, identifier_uri=MANAGEMENT_URI,
        roles=[ADMIN_ROLE, READER_ROLE],
    )
    cli = await service.create_application(tenant, "Keyless CLI (admin)", actor=INIT_ACTOR)
    record, pem = await service.issue_certificate(
        tenant, cli.client_id, cli_csr, actor=INIT_ACTOR, ca=ca,
        # one day short of the tenant's limit: the CA back-dates notBefore by five minutes for clock skew
        days=max(1, tenant.max_certificate_lifetime // 86400), display_name="keyless init",
    )
    await service.grant(tenant, cli.client_id, MANAGEMENT_URI, ADMIN_ROLE, actor=INIT_ACTOR)
    return Bootstrap(tenant=tenant, management=management, cli=cli, cli_certificate=record, cli_certificate_pem=pem)
