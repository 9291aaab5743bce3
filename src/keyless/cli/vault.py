"""`keyless vault …`: vaults, their grants, and the secrets in them.

Secret values are read from stdin or a file, never from the command line, where other users of the
machine can see them (`ps`, /proc/PID/cmdline, shell history).
"""

from __future__ import annotations

import getpass
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from keyless.cli.common import (
    DEFAULT_DATA_DIR,
    CaOpt,
    DataDirOpt,
    LimitOpt,
    ManagementClient,
    Output,
    OutputOpt,
    ServerOpt,
    client,
    emit,
    fail,
    seconds,
    usage,
    when,
)

app = typer.Typer(help="Secrets vaults: create, list, grant access, rotate keys; `vault secret` for secrets.",
                  no_args_is_help=True)
secret_app = typer.Typer(help="Secrets in a vault: set, get, list, versions, delete, recover, purge, backup, "
                              "restore.", no_args_is_help=True)
app.add_typer(secret_app, name="secret")

VaultArg = Annotated[str, typer.Argument(metavar="VAULT", help="Vault name.", show_default=False)]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Secret name (letters, digits, '-').",
                                        show_default=False)]
VAULT_COLUMNS = ("name", "retention_days", "purge_protection", "url")
SECRET_COLUMNS = ("name", "version", "enabled", "content_type", "expires", "updated_at")
DELETED_COLUMNS = ("name", "version", "deleted_at", "scheduled_purge_at")
TIMES = {"created_at": when, "updated_at": when, "expires": when, "not_before": when, "deleted_at": when,
         "scheduled_purge_at": when}


class ValueOutput(StrEnum):
    value = "value"
    json = "json"
    table = "table"


def _path(*parts: str) -> str:
    return "/vaults/" + "/".join(quote(p, safe="") for p in parts)


def _api(data_dir: Path, server: str | None, ca: Path | None) -> ManagementClient:
    return client(data_dir, server, ca)


@app.command("create")
def create(
    name: VaultArg,
    retention_days: Annotated[int, typer.Option(help="Days a deleted secret stays recoverable (7-90).")] = 90,
    purge_protection: Annotated[bool, typer.Option(
        "--purge-protection", help="Deleted secrets cannot be purged before retention ends (cannot be undone).")
    ] = False,
    grant_self: Annotated[bool, typer.Option(
        "--grant-self/--no-grant-self", help="Grant this CLI's application Secrets.Officer on the vault.")] = True,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Create a vault. Unless --no-grant-self, the CLI's application may manage its secrets (not purge).

    Example: keyless vault create payments --retention-days 30 --purge-protection
    """
    body = {"name": name, "retention_days": retention_days, "purge_protection": purge_protection,
            "grant_self": grant_self}
    emit(_api(data_dir, server, ca).call("POST", "/vaults", json_body=body), output, formatters=TIMES)


@app.command("list")
def list_vaults(data_dir: DataDirOpt = DEFAULT_DATA_DIR, server: ServerOpt = None, ca: CaOpt = None,
                output: OutputOpt = Output.table, limit: LimitOpt = None) -> None:
    """List the tenant's vaults and their URLs.

    Example: keyless vault list -o json
    """
    emit(_api(data_dir, server, ca).collect("/vaults", limit=limit), output, VAULT_COLUMNS)


@app.command("show")
def show(name: VaultArg, data_dir: DataDirOpt = DEFAULT_DATA_DIR, server: ServerOpt = None, ca: CaOpt = None,
         output: OutputOpt = Output.json) -> None:
    """Show one vault.

    Example: keyless vault show payments
    """
    emit(_api(data_dir, server, ca).call("GET", _path(name)), output, formatters=TIMES)


@app.command("update")
def update(
    name: VaultArg,
    retention_days: Annotated[int | None, typer.Option(help="Days a deleted secret stays recoverable (7-90).")] = None,
    purge_protection: Annotated[bool, typer.Option(
        "--purge-protection", help="Turn purge protection on (it cannot be turned off).")] = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Change a vault's retention, or turn on purge protection.

    Example: keyless vault update payments --purge-protection
    """
    body = {"retention_days": retention_days, "purge_protection": True if purge_protection else None}
    emit(_api(data_dir, server, ca).call("PATCH", _path(name), json_body=body), output, formatters=TIMES)


@app.command("grant")
def grant(
    name: VaultArg,
    principal: Annotated[str, typer.Argument(metavar="PRINCIPAL", show_default=False,
                                             help="Client id, identifier URI or unique display name.")],
    role: Annotated[list[str], typer.Option(
        "--role", help="Secrets.Get, .List, .Set, .Delete, .Recover, .Backup, .Restore, .Purge; or the bundles "
                       "Secrets.Reader (Get+List) and Secrets.Officer (all but Purge). Repeatable.")],
    secret: Annotated[str | None, typer.Option("--secret", help="Only this secret (exact name).")] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Grant an application roles on a vault, or on one secret in it.

    Example: keyless vault grant payments billing-worker --role Secrets.Get --secret db-password
    """
    body = {"principal": principal, "roles": role, "secret": secret}
    grants = _api(data_dir, server, ca).call("POST", _path(name, "grants"), json_body=body)
    emit(grants, output, ("id", "principal_client_id", "role", "secret"))


@app.command("grants")
def list_grants(name: VaultArg, data_dir: DataDirOpt = DEFAULT_DATA_DIR, server: ServerOpt = None,
                ca: CaOpt = None, output: OutputOpt = Output.table, limit: LimitOpt = None) -> None:
    """List who holds which roles on a vault.

    Example: keyless vault grants payments
    """
    emit(_api(data_dir, server, ca).collect(_path(name, "grants"), limit=limit), output,
         ("id", "principal_client_id", "role", "secret"))


@app.command("revoke")
def revoke(name: VaultArg,
           grant_id: Annotated[str, typer.Argument(metavar="GRANT_ID", help="From `vault grants`.",
                                                   show_default=False)],
           data_dir: DataDirOpt = DEFAULT_DATA_DIR, server: ServerOpt = None, ca: CaOpt = None) -> None:
    """Remove one grant.

    Example: keyless vault revoke payments 0f8e…
    """
    _api(data_dir, server, ca).call("DELETE", _path(name, "grants", grant_id))
    typer.echo("revoked", err=True)


@app.command("rotate-key")
def rotate_key(name: VaultArg, data_dir: DataDirOpt = DEFAULT_DATA_DIR, server: ServerOpt = None,
               ca: CaOpt = None, output: OutputOpt = Output.json) -> None:
    """Start a new vault key and re-wrap every data key under it (values are not re-encrypted).

    Example: keyless vault rotate-key payments
    """
    emit(_api(data_dir, server, ca).call("POST", _path(name, "rotate-key")), output)


# -- secrets ---------------------------------------------------------------------------------------
def _read_value(file: Path | None) -> str:
    if file is not None:
        try:
            raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror}")
    elif sys.stdin.isatty():
        return getpass.getpass("secret value: ")
    else:
        raw = sys.stdin.buffer.read()
        # `echo value | keyless vault secret set …` should store "value", not "value\n".
        raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("the secret value must be UTF-8 text (base64-encode binary data)")


def _tags(tag: list[str] | None) -> dict[str, str] | None:
    if not tag:
        return None
    out = {}
    for item in tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            usage("--tag takes KEY=VALUE")
        out[key] = value
    return out


TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE; repeatable.")]
ContentTypeOpt = Annotated[str | None, typer.Option("--content-type", help="A hint such as text/plain.")]
ExpiresOpt = Annotated[str | None, typer.Option("--expires-in", help="Sets exp, e.g. 90d (informational, as in "
                                                                     "Key Vault).")]
IfMatchOpt = Annotated[str | None, typer.Option("--if-match", help="Only if VERSION is still the latest (CAS).")]


@secret_app.command("set")
def secret_set(
    vault: VaultArg,
    name: NameArg,
    file: Annotated[Path | None, typer.Option("--file", help="Read the value from this file ('-': stdin, "
                                                               "byte for byte).")] = None,
    content_type: ContentTypeOpt = None,
    tag: TagOpt = None,
    expires_in: ExpiresOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Store the version disabled.")] = False,
    if_match: IfMatchOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Store a new version of a secret. The value comes from stdin (one trailing newline dropped), a
    prompt when stdin is a terminal, or --file — never from the command line.

    Example: keyless vault secret set payments db-password < password.txt
    """
    body: dict[str, Any] = {"value": _read_value(file), "content_type": content_type, "tags": _tags(tag),
                            "enabled": not disabled}
    if expires_in is not None:
        body["expires"] = time.time() + seconds(expires_in, "--expires-in")
    headers = {"If-Match": if_match} if if_match else None
    emit(_api(data_dir, server, ca).call("PUT", _path(vault, "secrets", name), json_body=body, headers=headers),
         output, formatters=TIMES)


@secret_app.command("get")
def secret_get(
    vault: VaultArg,
    name: NameArg,
    version: Annotated[str | None, typer.Option("--version", help="A version id (default: the latest).")] = None,
    output: Annotated[ValueOutput, typer.Option(
        "--output", "-o", help="value: the value alone, byte for byte; json: value and attributes.")
    ] = ValueOutput.value,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
) -> None:
    """Print a secret's value (every read is in the audit log).

    Example: export DB_PASSWORD="$(keyless vault secret get payments db-password)"
    """
    found = _api(data_dir, server, ca).call("GET", _path(vault, "secrets", name), params={"version": version})
    if output is ValueOutput.value:
        sys.stdout.write(found["value"])
        sys.stdout.flush()
        return
    emit(found, Output(output.value), formatters=TIMES)


@secret_app.command("update")
def secret_update(
    vault: VaultArg,
    name: NameArg,
    version: Annotated[str | None, typer.Option("--version", help="A version id (default: the latest).")] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled", help="Enable or disable the version.")
                       ] = None,
    content_type: ContentTypeOpt = None,
    tag: TagOpt = None,
    expires_in: ExpiresOpt = None,
    if_match: IfMatchOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Change a version's attributes (its value never changes: set a new version for that).

    Example: keyless vault secret update payments db-password --disabled
    """
    body: dict[str, Any] = {}
    if enabled is not None:
        body["enabled"] = enabled
    if content_type is not None:
        body["content_type"] = content_type
    if tag:
        body["tags"] = _tags(tag)
    if expires_in is not None:
        body["expires"] = time.time() + seconds(expires_in, "--expires-in")
    headers = {"If-Match": if_match} if if_match else None
    emit(_api(data_dir, server, ca).call("PATCH", _path(vault, "secrets", name), params={"version": version},
                                         json_body=body, headers=headers), output, formatters=TIMES)


def _all_pages(api: ManagementClient, path: str, limit: int | None) -> list[dict[str, Any]]:
    """The vault's own pages (Key Vault's `nextLink` style, docs/vault.md): every item, or the first `limit`."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = api.call("GET", path, params={"page_token": token})
        items += page["items"]
        token = page["next_page_token"]
        if not token or (limit is not None and len(items) >= limit):
            return items[:limit]


@secret_app.command("list")
def secret_list(vault: VaultArg, data_dir: DataDirOpt = DEFAULT_DATA_DIR, server: ServerOpt = None,
                ca: CaOpt = None, output: OutputOpt = Output.table,
                limit: LimitOpt = None) -> None:
    """List the secrets you may see (names and attributes, never values).

    Example: keyless vault secret list payments
    """
    emit(_all_pages(_api(data_dir, server, ca), _path(vault, "secrets"), limit), output, SECRET_COLUMNS, TIMES)


@secret_app.command("versions")
def secret_versions(vault: VaultArg, name: NameArg, data_dir: DataDirOpt = DEFAULT_DATA_DIR,
                    server: ServerOpt = None, ca: CaOpt = None, output: OutputOpt = Output.table,
                limit: LimitOpt = None) -> None:
    """List a secret's versions, oldest first.

    Example: keyless vault secret versions payments db-password
    """
    emit(_all_pages(_api(data_dir, server, ca), _path(vault, "secrets", name, "versions"), limit), output,
         SECRET_COLUMNS, TIMES)


@secret_app.command("delete")
def secret_delete(vault: VaultArg, name: NameArg, data_dir: DataDirOpt = DEFAULT_DATA_DIR, server: ServerOpt = None,
                  ca: CaOpt = None, output: OutputOpt = Output.json) -> None:
    """Soft-delete a secret: recoverable until its scheduled purge date.

    Example: keyless vault secret delete payments db-password
    """
    emit(_api(data_dir, server, ca).call("DELETE", _path(vault, "secrets", name)), output, formatters=TIMES)


@secret_app.command("deleted")
def secret_deleted(vault: VaultArg, data_dir: DataDirOpt = DEFAULT_DATA_DIR, server: ServerOpt = None,
                   ca: CaOpt = None, output: OutputOpt = Output.table,
                limit: LimitOpt = None) -> None:
    """List soft-deleted secrets and when each will be purged.

    Example: keyless vault secret deleted payments
    """
    emit(_all_pages(_api(data_dir, server, ca), _path(vault, "deleted"), limit), output, DELETED_COLUMNS, TIMES)


@secret_app.command("recover")
def secret_recover(vault: VaultArg, name: NameArg, data_dir: DataDirOpt = DEFAULT_DATA_DIR, server: ServerOpt = None,
                   ca: CaOpt = None, output: OutputOpt = Output.json) -> None:
    """Bring back a soft-deleted secret with all its versions.

    Example: keyless vault secret recover payments db-password
    """
    emit(_api(data_dir, server, ca).call("POST", _path(vault, "deleted", name, "recover")), output, formatters=TIMES)


@secret_app.command("purge")
def secret_purge(vault: VaultArg, name: NameArg, data_dir: DataDirOpt = DEFAULT_DATA_DIR, server: ServerOpt = None,
                 ca: CaOpt = None) -> None:
    """Destroy a soft-deleted secret for good (refused while purge protection is on).

    Example: keyless vault secret purge payments db-password
    """
    _api(data_dir, server, ca).call("DELETE", _path(vault, "deleted", name))
    typer.echo("purged", err=True)


@secret_app.command("backup")
def secret_backup(
    vault: VaultArg,
    name: NameArg,
    file: Annotated[Path | None, typer.Option("--file", help="Write the backup here (default: stdout).")] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
) -> None:
    """Write an encrypted backup of every version of a secret; only this installation's tenant can
    restore it.

    Example: keyless vault secret backup payments db-password --file db-password.kvbackup
    """
    blob = _api(data_dir, server, ca).call("POST", _path(vault, "secrets", name, "backup"))["backup"]
    if file is None:
        sys.stdout.write(blob + "\n")
    else:
        file.write_text(blob + "\n")
        file.chmod(0o600)


@secret_app.command("restore")
def secret_restore(
    vault: VaultArg,
    file: Annotated[Path | None, typer.Option("--file", help="Read the backup from here (default: stdin).")] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Restore a secret, with all its versions, from a backup (refused if the name exists).

    Example: keyless vault secret restore payments --file db-password.kvbackup
    """
    try:
        blob = (file.read_text() if file is not None else sys.stdin.read()).strip()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    emit(_api(data_dir, server, ca).call("POST", _path(vault, "restore"), json_body={"backup": blob}), output,
         formatters=TIMES)
