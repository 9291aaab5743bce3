"""`keyless grant` and `keyless grants …`: give a client an app role on a resource, list and revoke grants."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from keyless.cli.common import (
    LimitOpt,
    Output,
    emit,
    when,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="Role grants (app role assignments): list and revoke.", no_args_is_help=True)


@shared(Output.json)
def grant(
    client_ref: Annotated[str, typer.Argument(
        metavar="CLIENT_ID", help="The client (client id, identifier URI or unique display name).",
        show_default=False)],
    resource: Annotated[str, typer.Argument(
        metavar="RESOURCE_URI", help="The resource's identifier URI (or client id).", show_default=False)],
    role: Annotated[str, typer.Argument(help="One of the resource's app roles.", show_default=False)],
    *, opts: Shared,
) -> None:
    """Grant a client an app role on a resource: its tokens for the resource carry the role.

    Granting a role the client already has is not an error and returns the existing grant.

    Example: keyless grant orders-worker api://orders Orders.Read
    """
    api = opts.client()
    found = api.resolve_app(client_ref)
    created = api.call("POST", "/grants", json_body={"client_id": found["client_id"], "resource": resource,
                                                     "role": role})
    emit(created, opts.output, formatters={"created_at": when})


@app.command("list")
@shared(Output.table)
def list_grants(
    client_ref: Annotated[str | None, typer.Option(
        "--client", metavar="CLIENT_ID", help="Only grants held by this client (id, URI or unique name).")
    ] = None,
    resource: Annotated[str | None, typer.Option(
        "--resource", metavar="URI", help="Only grants on this resource (identifier URI or client id).")] = None,
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List role grants, optionally for one client or one resource.

    Example: keyless grants list --resource api://orders
    """
    api = opts.client()
    client_id = api.resolve_app(client_ref)["client_id"] if client_ref is not None else None
    rows: list[dict[str, Any]] = api.collect("/grants", params={"client_id": client_id, "resource": resource},
                                                 limit=limit)
    if opts.output is Output.json:
        emit(rows, opts.output)
        return
    apps = api.collect("/applications")
    names = {a["client_id"]: a["display_name"] for a in apps}
    uris = {a["client_id"]: a["identifier_uri"] or a["display_name"] for a in apps}
    table = [{"id": r["id"], "client": _named(names, r["client_id"]),
              "resource": _named(uris, r["resource_client_id"]), "role": r["role"],
              "created": when(r["created_at"])} for r in rows]
    emit(table, opts.output, columns=("id", "client", "resource", "role", "created"))


def _named(names: dict[str, str], client_id: str) -> str:
    """A readable name for a client id (the JSON output keeps the ids)."""
    return names.get(client_id) or client_id


@app.command("revoke")
@shared(Output.json)
def revoke(
    grant_id: Annotated[str, typer.Argument(help="Id of the grant (from `keyless grants list`).",
                                            show_default=False)],
    *, opts: Shared,
) -> None:
    """Revoke a grant: tokens issued from now on no longer carry the role.

    Example: keyless grants revoke 0b7e5c1a-3f2d-4c8e-9b6a-1d2e3f4a5b6c
    """
    opts.client().call("DELETE", f"/grants/{quote(grant_id, safe='')}")
    if opts.output is Output.json:
        emit({"revoked": True, "id": grant_id}, opts.output)
    else:
        typer.echo(f"revoked grant {grant_id}")
