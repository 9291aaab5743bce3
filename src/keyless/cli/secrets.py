"""`keyless secret …`: client secrets. The plaintext is shown once, by `secret add`, and never again."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from keyless.cli.common import (
    LimitOpt,
    Output,
    emit,
    seconds,
    when,
)
from keyless.cli.options import Shared, shared
from keyless.cli.times import iso_utc

app = typer.Typer(help="Client secrets: add (shown once), list, revoke.", no_args_is_help=True)

ClientArg = Annotated[str, typer.Argument(
    metavar="CLIENT_ID", help="Client id (or identifier URI or unique display name) of the application.",
    show_default=False)]

LIST_COLUMNS = ("id", "hint", "display_name", "created_at", "expires_at", "last_used_at")
HEADINGS = {"display_name": "name", "created_at": "created", "expires_at": "expires", "last_used_at": "last used"}


@app.command("add")
@shared(Output.json)
def add(
    client_ref: ClientArg,
    expires_in: Annotated[str | None, typer.Option(
        "--expires-in", help="Lifetime such as 30d, 12h or 1y (default: the tenant's setting).")] = None,
    name: Annotated[str, typer.Option("--name", help="A note to tell secrets apart.")] = "",
    *, opts: Shared,
) -> None:
    """Create a client secret and print it. This is the only time the secret is shown: store it now.

    Example: keyless secret add orders-worker --expires-in 30d --name ci
    """
    lifetime = seconds(expires_in, "--expires-in") if expires_in is not None else None
    api = opts.client()
    found = api.resolve_app(client_ref)
    created: dict[str, Any] = api.call("POST", f"/applications/{found['client_id']}/secrets",
                                       json_body={"expires_in": lifetime, "display_name": name})
    out = {
        "id": created["id"],
        "secret": created["secret"],
        "expires": iso_utc(created["expires_at"]),
        "hint": created["hint"],
        "client_id": created["client_id"],
        "name": created.get("display_name", ""),
        "created_at": created["created_at"],
        "expires_at": created["expires_at"],
    }
    emit(out, opts.output, formatters={"created_at": when, "expires_at": when})


@app.command("list")
@shared(Output.table)
def list_secrets(
    client_ref: ClientArg,
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List an application's secrets: id, hint, name and dates (never the secret itself).

    Example: keyless secret list orders-worker
    """
    api = opts.client()
    found = api.resolve_app(client_ref)
    rows: list[dict[str, Any]] = api.collect(f"/applications/{found['client_id']}/secrets", limit=limit)
    if opts.output is Output.json:
        emit([{**r, "expires": iso_utc(r["expires_at"])} for r in rows], opts.output)
        return
    table = [{HEADINGS.get(k, k): (when(r.get(k)) if k.endswith("_at") else r.get(k)) for k in LIST_COLUMNS}
             for r in rows]
    emit(table, opts.output, columns=[HEADINGS.get(k, k) for k in LIST_COLUMNS])


@app.command("revoke")
@shared(Output.json)
def revoke(
    client_ref: ClientArg,
    secret_id: Annotated[str, typer.Argument(help="Id of the secret (from `keyless secret list`).",
                                             show_default=False)],
    *, opts: Shared,
) -> None:
    """Revoke a secret at once: tokens can no longer be requested with it.

    Example: keyless secret revoke orders-worker 5f0c2a8e-1d5b-4f7e-9a63-0b1c2d3e4f50
    """
    api = opts.client()
    found = api.resolve_app(client_ref)
    api.call("DELETE", f"/applications/{found['client_id']}/secrets/{quote(secret_id, safe='')}")
    if opts.output is Output.json:
        emit({"revoked": True, "client_id": found["client_id"], "id": secret_id}, opts.output)
    else:
        typer.echo(f"revoked secret {secret_id} of {found['display_name']} ({found['client_id']})")
