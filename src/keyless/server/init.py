"""`keyless init`: a new data directory with everything a server needs, created in one go."""

from __future__ import annotations

import base64
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from keyless.clock import Clock, SystemClock
from keyless.crypto import aead, ca
from keyless.crypto.certificates import certificate_signing_request, generate_client_key, private_key_pem
from keyless.directory.bootstrap import Bootstrap, bootstrap
from keyless.directory.service import DirectoryService
from keyless.errors import ConfigurationError
from keyless.server.datadir import CA_KEY_AAD, DataDir, secret_hasher, tls_key_password
from keyless.store import db
from keyless.store.directory import SqlDirectoryStore
from keyless.store.installation import agree_public_url

CLI_CERTIFICATE = "cli.pem"  # DATA/cli/: the CLI's certificate, issued by the local CA …
CLI_KEY = "cli.key"  # … and its private key (0600), which never leaves this directory


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class InitResult:
    data_dir: DataDir
    boot: Bootstrap
    server_url: str


async def initialize(
    root: Path,
    *,
    database_url: str | None = None,
    server_url: str = "https://127.0.0.1:8443",
    signing_alg: str = "RS256",
    tenant_name: str = "default",
    vault_domain: str = "vault.localhost",
    clock: Clock | None = None,
) -> InitResult:
    clock = clock or SystemClock()
    data = DataDir(root)
    if root.exists() and any(root.iterdir()):
        raise ConfigurationError(f"{root} exists and is not empty: refusing to overwrite a data directory")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)

    kek = aead.new_key()
    data.write_private(data.kek, base64.b64encode(kek) + b"\n")

    now = clock.now()
    authority = ca.create_ca("Keyless local CA", now=now)
    data.write_public(data.ca_cert, authority.cert_pem)
    data.write_private(data.ca_key, aead.seal(kek, authority.key_der, CA_KEY_AAD))
    hostnames = ["localhost"]
    host = urlsplit(server_url).hostname or ""
    if host and host not in hostnames and not _is_ip(host):
        hostnames.append(host)
    hostnames += [vault_domain, f"*.{vault_domain}"]  # vaults by name: https://{vault}.{vault_domain}:PORT
    tls = ca.issue_server_cert(authority, hostnames=hostnames, ips=["127.0.0.1", "::1"], now=now)
    data.write_public(data.tls_cert, tls.cert_pem + authority.cert_pem)
    data.write_private(data.tls_key, ca.encrypted_pem(tls.key_der, tls_key_password(kek).encode()))

    # The CLI's admin credential: a key pair made here, of which only the certificate is registered.
    cli_key = generate_client_key("p256")

    url = db.normalise_url(database_url) if database_url else db.sqlite_url(data.sqlite)
    engine = db.create_engine(url)
    try:
        await db.migrate(engine)
        store = SqlDirectoryStore(engine)
        if await store.get_tenant(tenant_name) is not None:
            raise ConfigurationError(f"the database already holds a tenant {tenant_name!r}: use a new database")
        service = DirectoryService(store, clock, secret_hasher(kek), kek)
        boot = await bootstrap(service, ca=authority, cli_csr=certificate_signing_request(cli_key, "Keyless CLI"),
                               tenant_name=tenant_name, signing_alg=signing_alg)
        await agree_public_url(engine, server_url)
    finally:
        await engine.dispose()
    if data.sqlite.exists():
        data.sqlite.chmod(0o600)  # SQLite gives its WAL and shared-memory files the same mode

    cli_dir = data.cli_credential.parent
    data.write_private(cli_dir / CLI_KEY, private_key_pem(cli_key))
    data.write_public(cli_dir / CLI_CERTIFICATE, boot.cli_certificate_pem)
    credential = {  # file names relative to the cli/ directory
        "tenant": boot.tenant.id,
        "client_id": boot.cli.client_id,
        "certificate": CLI_CERTIFICATE,
        "private_key": CLI_KEY,
    }
    data.write_private(data.cli_credential, json.dumps(credential, indent=2).encode() + b"\n")
    config: dict[str, object] = {
        "version": 1,
        "tenant_id": boot.tenant.id,
        "tenant_name": boot.tenant.name,
        "server_url": server_url,
        "vault_domain": vault_domain,
    }
    if database_url:
        parsed = make_url(database_url)
        if parsed.password is None:  # never write a database password to disk here
            config["database_url"] = database_url
    data.write_public(data.config, json.dumps(config, indent=2).encode() + b"\n")
    return InitResult(data_dir=data, boot=boot, server_url=server_url)
