"""`keyless host …`: add hosts (with a single-use join token for their agent), list and remove them."""

from __future__ import annotations

from typing import Annotated
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

app = typer.Typer(help="Hosts: machines whose Keyless agent holds their managed identities.", no_args_is_help=True)

HostArg = Annotated[str, typer.Argument(metavar="HOST", help="Host name or id.", show_default=False)]
FORMATTERS = {"created_at": when, "enrolled_at": when, "join_expires_at": when}


@app.command("add")
@shared(Output.json)
def add(
    name: Annotated[str, typer.Argument(help="Host name: lower-case letters, digits, '.', '-'.", show_default=False)],
    join_ttl: Annotated[str, typer.Option("--join-ttl", help="How long the join token stays valid.")] = "15m",
    *, opts: Shared,
) -> None:
    """Add a host and its system-assigned identity; print a single-use join token for its agent.

    The token is shown once, is stored only as a keyed hash, and works once, before it expires.

    Example: keyless host add build-01 --join-ttl 10m
    """
    created = opts.client().call(
        "POST", "/hosts", json_body={"name": name, "join_ttl": seconds(join_ttl, "--join-ttl")}
    )
    if opts.output is Output.json:
        emit(created, opts.output)
        return
    identity = created["system_identity"]
    emit({"host": created["name"], "id": created["id"], "system_client_id": identity["client_id"],
          "resource_id": identity["resource_id"], "join_expires_at": created["join_expires_at"],
          "join_token": created["join_token"]}, opts.output, formatters=FORMATTERS)
    typer.echo("On the host, run: keyless agent --server URL --ca ca.pem --join-token TOKEN", err=True)


@app.command("join-token")
@shared(Output.json)
def join_token(
    host: HostArg,
    join_ttl: Annotated[str, typer.Option("--join-ttl", help="How long the join token stays valid.")] = "15m",
    *, opts: Shared,
) -> None:
    """A new join token for a host that has not enrolled yet (the previous one stops working).

    Example: keyless host join-token build-01
    """
    created = opts.client().call(
        "POST", f"/hosts/{quote(host, safe='')}/join-token", json_body={"join_ttl": seconds(join_ttl, "--join-ttl")}
    )
    emit(created, opts.output, formatters=FORMATTERS)


@app.command("list")
@shared(Output.table)
def list_hosts(
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List hosts: pending (join token outstanding) or enrolled.

    Example: keyless host list --output json
    """
    rows = opts.client().collect("/hosts", limit=limit)
    emit(rows, opts.output, columns=("id", "name", "status", "system_client_id", "enrolled_at", "created_at"),
         formatters=FORMATTERS)


@app.command("show")
@shared(Output.json)
def show(
    host: HostArg,
    *, opts: Shared,
) -> None:
    """Show a host with the identities it may act for and its certificates.

    Example: keyless host show build-01
    """
    data = opts.client().call("GET", f"/hosts/{quote(host, safe='')}")
    if opts.output is Output.table:
        data = {**data, "identities": [f"{i['name']} ({i['kind']}, {i['client_id']})" for i in data["identities"]],
                "certificates": [f"{c['id']} until {when(c['not_after'])}" for c in data["certificates"]]}
    emit(data, opts.output, formatters=FORMATTERS)


@app.command("remove")
@shared(Output.json)
def remove(
    host: HostArg,
    *, opts: Shared,
) -> None:
    """Remove a host and its system-assigned identity: its agent gets no new token from now on.

    Example: keyless host remove build-01
    """
    opts.client().call("DELETE", f"/hosts/{quote(host, safe='')}")
    if opts.output is Output.json:
        emit({"removed": True, "host": host}, opts.output)
    else:
        typer.echo(f"removed host {host}")
