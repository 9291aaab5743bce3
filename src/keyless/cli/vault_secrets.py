"""`keyless vault secret …`: the secrets in a vault (Key Vault's data plane, through the management API).

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
    LimitOpt,
    ManagementClient,
    Output,
    emit,
    fail,
    seconds,
    usage,
    when,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="Secrets in a vault: set, get, list, versions, delete, recover, purge, backup, "
                       "restore.", no_args_is_help=True)

VaultArg = Annotated[str, typer.Argument(metavar="VAULT", help="Vault name.", show_default=False)]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Secret name (letters, digits, '-').",
                                        show_default=False)]
SECRET_COLUMNS = ("name", "version", "enabled", "content_type", "expires", "updated_at")
DELETED_COLUMNS = ("name", "version", "deleted_at", "scheduled_purge_at")
TIMES = {"created_at": when, "updated_at": when, "expires": when, "not_before": when, "deleted_at": when,
         "scheduled_purge_at": when}


class ValueOutput(StrEnum):
    value = "value"
    json = "json"
    table = "table"


def vault_path(*parts: str) -> str:
    """`/vaults/NAME/…` with each part escaped."""
    return "/vaults/" + "/".join(quote(p, safe="") for p in parts)


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


@app.command("set")
@shared(Output.json)
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
    *, opts: Shared,
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
    emit(opts.client().call("PUT", vault_path(vault, "secrets", name), json_body=body, headers=headers),
         opts.output, formatters=TIMES)


@app.command("get")
@shared(None)
def secret_get(
    vault: VaultArg,
    name: NameArg,
    version: Annotated[str | None, typer.Option("--version", help="A version id (default: the latest).")] = None,
    shown: Annotated[ValueOutput, typer.Option(
        "--output", "-o", help="value: the value alone, byte for byte; json: value and attributes.")
    ] = ValueOutput.value,
    *, opts: Shared,
) -> None:
    """Print a secret's value (every read is in the audit log).

    Example: export DB_PASSWORD="$(keyless vault secret get payments db-password)"
    """
    found = opts.client().call("GET", vault_path(vault, "secrets", name), params={"version": version})
    if shown is ValueOutput.value:
        sys.stdout.write(found["value"])
        sys.stdout.flush()
        return
    emit(found, Output(shown.value), formatters=TIMES)


@app.command("update")
@shared(Output.json)
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
    *, opts: Shared,
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
    emit(opts.client().call("PATCH", vault_path(vault, "secrets", name), params={"version": version},
                                         json_body=body, headers=headers), opts.output, formatters=TIMES)


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


@app.command("list")
@shared(Output.table)
def secret_list(vault: VaultArg, limit: LimitOpt = None, *, opts: Shared) -> None:
    """List the secrets you may see (names and attributes, never values).

    Example: keyless vault secret list payments
    """
    emit(_all_pages(opts.client(), vault_path(vault, "secrets"), limit), opts.output, SECRET_COLUMNS, TIMES)


@app.command("versions")
@shared(Output.table)
def secret_versions(vault: VaultArg, name: NameArg, limit: LimitOpt = None, *, opts: Shared) -> None:
    """List a secret's versions, oldest first.

    Example: keyless vault secret versions payments db-password
    """
    emit(_all_pages(opts.client(), vault_path(vault, "secrets", name, "versions"), limit), opts.output,
         SECRET_COLUMNS, TIMES)


@app.command("delete")
@shared(Output.json)
def secret_delete(vault: VaultArg, name: NameArg, *, opts: Shared) -> None:
    """Soft-delete a secret: recoverable until its scheduled purge date.

    Example: keyless vault secret delete payments db-password
    """
    emit(opts.client().call("DELETE", vault_path(vault, "secrets", name)), opts.output, formatters=TIMES)


@app.command("deleted")
@shared(Output.table)
def secret_deleted(vault: VaultArg, limit: LimitOpt = None, *, opts: Shared) -> None:
    """List soft-deleted secrets and when each will be purged.

    Example: keyless vault secret deleted payments
    """
    emit(_all_pages(opts.client(), vault_path(vault, "deleted"), limit), opts.output, DELETED_COLUMNS, TIMES)


@app.command("recover")
@shared(Output.json)
def secret_recover(vault: VaultArg, name: NameArg, *, opts: Shared) -> None:
    """Bring back a soft-deleted secret with all its versions.

    Example: keyless vault secret recover payments db-password
    """
    emit(opts.client().call("POST", vault_path(vault, "deleted", name, "recover")), opts.output, formatters=TIMES)


@app.command("purge")
@shared(None)
def secret_purge(vault: VaultArg, name: NameArg, *, opts: Shared) -> None:
    """Destroy a soft-deleted secret for good (refused while purge protection is on).

    Example: keyless vault secret purge payments db-password
    """
    opts.client().call("DELETE", vault_path(vault, "deleted", name))
    typer.echo("purged", err=True)


@app.command("backup")
@shared(None)
def secret_backup(
    vault: VaultArg,
    name: NameArg,
    file: Annotated[Path | None, typer.Option("--file", help="Write the backup here (default: stdout).")] = None,
    *, opts: Shared,
) -> None:
    """Write an encrypted backup of every version of a secret; only this installation's tenant can
    restore it.

    Example: keyless vault secret backup payments db-password --file db-password.kvbackup
    """
    blob = opts.client().call("POST", vault_path(vault, "secrets", name, "backup"))["backup"]
    if file is None:
        sys.stdout.write(blob + "\n")
    else:
        file.write_text(blob + "\n")
        file.chmod(0o600)


@app.command("restore")
@shared(Output.json)
def secret_restore(
    vault: VaultArg,
    file: Annotated[Path | None, typer.Option("--file", help="Read the backup from here (default: stdin).")] = None,
    *, opts: Shared,
) -> None:
    """Restore a secret, with all its versions, from a backup (refused if the name exists).

    Example: keyless vault secret restore payments --file db-password.kvbackup
    """
    try:
        blob = (file.read_text() if file is not None else sys.stdin.read()).strip()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    emit(opts.client().call("POST", vault_path(vault, "restore"), json_body={"backup": blob}), opts.output,
         formatters=TIMES)
