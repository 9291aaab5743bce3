"""`keyless vault …`: vaults and their grants; `keyless vault secret …` (the secrets in them) is
keyless.cli.vault_secrets."""

from __future__ import annotations

from typing import Annotated

import typer

from keyless.cli import vault_secrets
from keyless.cli.common import (
    LimitOpt,
    Output,
    emit,
)
from keyless.cli.options import Shared, shared
from keyless.cli.vault_secrets import TIMES, VaultArg
from keyless.cli.vault_secrets import vault_path as _path

app = typer.Typer(help="Secrets vaults: create, list, grant access, rotate keys; `vault secret` for secrets.",
                  no_args_is_help=True)
app.add_typer(vault_secrets.app, name="secret")

VAULT_COLUMNS = ("name", "retention_days", "purge_protection", "url")


@app.command("create")
@shared(Output.json)
def create(
    name: VaultArg,
    retention_days: Annotated[int, typer.Option(help="Days a deleted secret stays recoverable (7-90).")] = 90,
    purge_protection: Annotated[bool, typer.Option(
        "--purge-protection", help="Deleted secrets cannot be purged before retention ends (cannot be undone).")
    ] = False,
    grant_self: Annotated[bool, typer.Option(
        "--grant-self/--no-grant-self", help="Grant this CLI's application Secrets.Officer on the vault.")] = True,
    *, opts: Shared,
) -> None:
    """Create a vault. Unless --no-grant-self, the CLI's application may manage its secrets (not purge).

    Example: keyless vault create payments --retention-days 30 --purge-protection
    """
    body = {"name": name, "retention_days": retention_days, "purge_protection": purge_protection,
            "grant_self": grant_self}
    emit(opts.client().call("POST", "/vaults", json_body=body), opts.output, formatters=TIMES)


@app.command("list")
@shared(Output.table)
def list_vaults(limit: LimitOpt = None, *, opts: Shared) -> None:
    """List the tenant's vaults and their URLs.

    Example: keyless vault list -o json
    """
    emit(opts.client().collect("/vaults", limit=limit), opts.output, VAULT_COLUMNS)


@app.command("show")
@shared(Output.json)
def show(name: VaultArg, *, opts: Shared) -> None:
    """Show one vault.

    Example: keyless vault show payments
    """
    emit(opts.client().call("GET", _path(name)), opts.output, formatters=TIMES)


@app.command("update")
@shared(Output.json)
def update(
    name: VaultArg,
    retention_days: Annotated[int | None, typer.Option(help="Days a deleted secret stays recoverable (7-90).")] = None,
    purge_protection: Annotated[bool, typer.Option(
        "--purge-protection", help="Turn purge protection on (it cannot be turned off).")] = False,
    *, opts: Shared,
) -> None:
    """Change a vault's retention, or turn on purge protection.

    Example: keyless vault update payments --purge-protection
    """
    body = {"retention_days": retention_days, "purge_protection": True if purge_protection else None}
    emit(opts.client().call("PATCH", _path(name), json_body=body), opts.output, formatters=TIMES)


@app.command("grant")
@shared(Output.table)
def grant(
    name: VaultArg,
    principal: Annotated[str, typer.Argument(metavar="PRINCIPAL", show_default=False,
                                             help="Client id, identifier URI or unique display name.")],
    role: Annotated[list[str], typer.Option(
        "--role", help="Secrets.Get, .List, .Set, .Delete, .Recover, .Backup, .Restore, .Purge; or the bundles "
                       "Secrets.Reader (Get+List) and Secrets.Officer (all but Purge). Repeatable.")],
    secret: Annotated[str | None, typer.Option("--secret", help="Only this secret (exact name).")] = None,
    *, opts: Shared,
) -> None:
    """Grant an application roles on a vault, or on one secret in it.

    Example: keyless vault grant payments billing-worker --role Secrets.Get --secret db-password
    """
    body = {"principal": principal, "roles": role, "secret": secret}
    grants = opts.client().call("POST", _path(name, "grants"), json_body=body)
    emit(grants, opts.output, ("id", "principal_client_id", "role", "secret"))


@app.command("grants")
@shared(Output.table)
def list_grants(name: VaultArg, limit: LimitOpt = None, *, opts: Shared) -> None:
    """List who holds which roles on a vault.

    Example: keyless vault grants payments
    """
    emit(opts.client().collect(_path(name, "grants"), limit=limit), opts.output,
         ("id", "principal_client_id", "role", "secret"))


@app.command("revoke")
@shared(None)
def revoke(name: VaultArg,
           grant_id: Annotated[str, typer.Argument(metavar="GRANT_ID", help="From `vault grants`.",
                                                   show_default=False)],
           *, opts: Shared) -> None:
    """Remove one grant.

    Example: keyless vault revoke payments 0f8e…
    """
    opts.client().call("DELETE", _path(name, "grants", grant_id))
    typer.echo("revoked", err=True)


@app.command("rotate-key")
@shared(Output.json)
def rotate_key(name: VaultArg, *, opts: Shared) -> None:
    """Start a new vault key and re-wrap every data key under it (values are not re-encrypted).

    Example: keyless vault rotate-key payments
    """
    emit(opts.client().call("POST", _path(name, "rotate-key")), opts.output)
