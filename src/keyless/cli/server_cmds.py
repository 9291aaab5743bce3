"""`keyless init`, `keyless serve`, `keyless db upgrade`: the commands that touch the data directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from keyless.cli.common import Output, emit, fail, usage
from keyless.cli.options import Shared, shared

SigningAlgOpt = Annotated[str, typer.Option("--signing-alg", help="Token signing algorithm: RS256 or ES256.")]
DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database-url", envvar="KEYLESS_DATABASE_URL",
                 help="postgresql://user@host/db (default: SQLite in the data dir)."),
]


def _config(data_dir: Path) -> dict[str, object]:
    config = data_dir / "config.json"
    if not config.exists():
        return {}
    data: dict[str, object] = json.loads(config.read_text())
    return data


def config_port(data_dir: Path) -> int | None:
    port: int | None = urlsplit(str(_config(data_dir).get("server_url", ""))).port
    return port


VaultDomainOpt = Annotated[
    str | None,
    typer.Option("--vault-domain", envvar="KEYLESS_VAULT_DOMAIN",
                 help="Vaults are served as https://VAULT.DOMAIN:VAULT_PORT (default vault.localhost)."),
]


@shared(Output.json, remote=False)
def init(
    database_url: DatabaseOpt = None,
    port: Annotated[int, typer.Option(help="Port the server will listen on (goes into its URL).")] = 8443,
    server_url: Annotated[str | None, typer.Option(help="Public URL; default https://127.0.0.1:PORT.")] = None,
    signing_alg: SigningAlgOpt = "RS256",
    vault_domain: VaultDomainOpt = None,
    *, opts: Shared,
) -> None:
    """Create a data directory: database at head, default tenant, signing key, local CA and TLS
    certificate, key-encryption key (0600) and the CLI's admin credential (0600).

    Refuses to touch a directory that is not empty.

    Example: keyless init --data-dir /var/lib/keyless
    """
    from keyless.server.init import initialize

    if signing_alg not in {"RS256", "ES256"}:
        usage("--signing-alg must be RS256 or ES256")
    url = server_url or f"https://127.0.0.1:{port}"
    result = asyncio.run(
        initialize(opts.data_dir, database_url=database_url, server_url=url, signing_alg=signing_alg,
                   vault_domain=vault_domain or "vault.localhost")
    )
    emit(
        {
            "data_dir": str(opts.data_dir.resolve()),
            "tenant_id": result.boot.tenant.id,
            "tenant_name": result.boot.tenant.name,
            "server_url": url,
            "issuer": f"{url}/{result.boot.tenant.id}/v2.0",
            "ca": str((opts.data_dir / "ca" / "ca.pem").resolve()),
            "cli_client_id": result.boot.cli.client_id,
        },
        opts.output,
    )


@shared(None, remote=False)
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: the one in the data dir's URL, or 8443).")] = None,
    database_url: DatabaseOpt = None,
    public_url: Annotated[str | None, typer.Option(help="Base URL clients use (issuer prefix).")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    vault_port: Annotated[int | None, typer.Option(
        envvar="KEYLESS_VAULT_PORT",
        help="HTTPS port of the Key Vault-compatible vault API (default PORT+2; -1 turns it off).")] = None,
    vault_domain: VaultDomainOpt = None,
    default_vault: Annotated[str, typer.Option(envvar="KEYLESS_DEFAULT_VAULT",
                                               help="The vault served at https://HOST:VAULT_PORT/.")] = "default",
    federation_ca: Annotated[Path | None, typer.Option(
        "--federation-ca", help="Extra CA bundle to trust when fetching external issuers' metadata.")] = None,
    allow_private_issuer: Annotated[list[str] | None, typer.Option(
        "--allow-private-issuer", help="Host name or network of an external issuer exempt from the "
        "public-address rule (repeatable; for tests, never production).")] = None,
    trusted_proxy: Annotated[list[str] | None, typer.Option(
        "--trusted-proxy", help="Address or CIDR of a reverse proxy whose X-Forwarded-For/Forwarded header "
        "names the client (repeatable; default: none, the headers are ignored; docs/policies.md).")] = None,
    *, opts: Shared,
) -> None:
    """Run the identity server over HTTPS (TLS 1.2+) until interrupted: the token service and the
    management API on PORT, the vault on VAULT_PORT.

    Example: keyless serve --data-dir /var/lib/keyless --port 8443 --vault-port 8445
    """
    from pydantic import ValidationError

    from keyless.server.run import run_server, serve
    from keyless.server.settings import ServerSettings

    chosen = port or config_port(opts.data_dir) or 8443
    domain = vault_domain or str(_config(opts.data_dir).get("vault_domain", "vault.localhost"))
    overrides: dict[str, Any] = {}  # only what was given, so KEYLESS_* environment settings still apply
    if federation_ca is not None:
        overrides["federation_ca_bundle"] = federation_ca
    if allow_private_issuer:
        overrides["allow_private_issuers"] = allow_private_issuer
    if trusted_proxy:
        overrides["trusted_proxies"] = trusted_proxy
    try:
        settings = ServerSettings(
            data_dir=opts.data_dir, host=host, port=chosen, database_url=database_url, public_url=public_url,
            log_level=log_level, vault_port=chosen + 2 if vault_port is None else vault_port, vault_domain=domain,
            default_vault=default_vault, **overrides,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"invalid setting {first['loc'][0]}: {first['msg']}")
    with contextlib.suppress(KeyboardInterrupt):
        run_server(serve(settings))


db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
@shared(None, remote=False)
def db_upgrade(database_url: DatabaseOpt = None, *, opts: Shared) -> None:
    """Migrate the database to this build's schema (Alembic head).

    Example: keyless db upgrade --database-url postgresql://keyless@db/keyless
    """
    from keyless.store import db

    url = database_url or json.loads((opts.data_dir / "config.json").read_text()).get("database_url")
    url = url or db.sqlite_url(opts.data_dir / "keyless.db")

    async def run() -> str | None:
        engine = db.create_engine(url)
        try:
            await db.migrate(engine)
            return await db.current_revision(engine)
        finally:
            await engine.dispose()

    typer.echo(f"schema at {asyncio.run(run())}")


@db_app.command("set-public-url")
@shared(Output.json, remote=False)
def db_set_public_url(
    url: Annotated[str, typer.Argument(help="The new public base URL, e.g. https://keyless.example.com")],
    database_url: DatabaseOpt = None,
    *, opts: Shared,
) -> None:
    """Move the installation to a new public URL: every tenant's issuer becomes URL/{tenant}/v2.0.

    Resource servers must then trust the new issuer, and tokens issued under the old one stop being
    accepted by validators configured for the new one: stop every replica first, then start them all
    with the same URL (docs/deployment.md).

    Example: keyless db set-public-url https://keyless.example.com --data-dir /var/lib/keyless
    """
    from keyless.store import db
    from keyless.store.installation import agree_public_url

    parsed = urlsplit(url)
    if parsed.scheme != "https" or not parsed.hostname or parsed.query or parsed.fragment:
        fail("the public URL must be https://HOST[:PORT][/PATH] with no query or fragment")
    config = _config(opts.data_dir)
    if not config:
        fail(f"{opts.data_dir} is not a Keyless data directory: run `keyless init` first")
    target = database_url or config.get("database_url") or db.sqlite_url(opts.data_dir / "keyless.db")

    async def run() -> str:
        engine = db.create_engine(str(target))
        try:
            await db.require_head(engine)
            return await agree_public_url(engine, url, move=True)
        finally:
            await engine.dispose()

    moved = asyncio.run(run())
    config["server_url"] = moved
    (opts.data_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    emit({"public_url": moved, "data_dir": str(opts.data_dir.resolve())}, opts.output)
