"""`keyless app …`: register, inspect, enable, disable and delete applications, and give resources roles."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from keyless.cli.common import (
    LimitOpt,
    Output,
    client,
    emit,
    fail,
    when,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="Applications: workloads (clients) and the APIs they call (resources).",
                  no_args_is_help=True)

RefArg = Annotated[str, typer.Argument(help="Client id, identifier URI or unique display name.",
                                       show_default=False)]

APP_FIELDS = ("client_id", "object_id", "display_name", "identifier_uri", "roles", "enabled", "open_to_tenant",
              "created_at")
LIST_COLUMNS = ("client_id", "display_name", "identifier_uri", "roles", "enabled", "open_to_tenant")


def _roles(value: Any) -> str:
    if not value:
        return ""
    return ", ".join(str(r.get("value")) + ("" if r.get("enabled", True) else " (disabled)") for r in value)


FORMATTERS = {"roles": _roles, "created_at": when}


def show_app(data: dict[str, Any], output: Output) -> None:
    emit(data, output, columns=APP_FIELDS if output is Output.table else None, formatters=FORMATTERS)


def confirmed(yes: bool, question: str, what: str) -> None:
    """Go on with a destructive change only with --yes or a 'y' typed at a terminal."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"refusing to {what} without --yes (stdin is not a terminal)")
    if not typer.confirm(question, default=False):
        fail("cancelled")


@app.command("create")
@shared(Output.json)
def create(
    name: Annotated[str, typer.Argument(help="Display name.", show_default=False)],
    identifier_uri: Annotated[str | None, typer.Option(
        "--identifier-uri", help="Makes the app a resource: the audience of tokens for it (e.g. api://orders).")
    ] = None,
    role: Annotated[list[str] | None, typer.Option(
        "--role", help="An app role the resource offers (repeatable; needs --identifier-uri).")] = None,
    open_to_tenant: Annotated[bool, typer.Option(
        "--open", help="Any app of the tenant may get a token for this resource without a grant.")] = False,
    *, opts: Shared,
) -> None:
    """Register an application and print it (client_id, object_id, roles…).

    Example: keyless app create orders-api --identifier-uri api://orders --role Orders.Read
    """
    body = {"display_name": name, "identifier_uri": identifier_uri, "roles": list(role or []),
            "open_to_tenant": open_to_tenant}
    show_app(opts.client().call("POST", "/applications", json_body=body), opts.output)


@app.command("list")
@shared(Output.table)
def list_apps(
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List the tenant's applications.

    Example: keyless app list -o json
    """
    emit(opts.client().collect("/applications", limit=limit), opts.output,
         columns=LIST_COLUMNS if opts.output is Output.table else None, formatters=FORMATTERS)


@app.command("show")
@shared(Output.json)
def show(
    ref: RefArg,
    *, opts: Shared,
) -> None:
    """Show one application.

    Example: keyless app show api://orders
    """
    show_app(opts.client().resolve_app(ref), opts.output)


def _set_enabled(ref: str, enabled: bool, data_dir: Path, server: str | None, ca: Path | None,
                 output: Output) -> None:
    api = client(data_dir, server, ca)
    found = api.resolve_app(ref)
    show_app(api.call("PATCH", f"/applications/{found['client_id']}", json_body={"enabled": enabled}), output)


@app.command("disable")
@shared(Output.json)
def disable(
    ref: RefArg,
    *, opts: Shared,
) -> None:
    """Disable an application: it gets no more tokens until enabled again.

    Example: keyless app disable orders-worker
    """
    _set_enabled(ref, False, opts.data_dir, opts.server, opts.ca, opts.output)


@app.command("enable")
@shared(Output.json)
def enable(
    ref: RefArg,
    *, opts: Shared,
) -> None:
    """Enable a disabled application.

    Example: keyless app enable orders-worker
    """
    _set_enabled(ref, True, opts.data_dir, opts.server, opts.ca, opts.output)


@app.command("delete")
@shared(Output.json)
def delete(
    ref: RefArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    *, opts: Shared,
) -> None:
    """Delete an application with its secrets, roles and grants. Cannot be undone.

    Example: keyless app delete orders-worker --yes
    """
    api = opts.client()
    found = api.resolve_app(ref)
    confirmed(yes, f"Delete application {found['display_name']} ({found['client_id']})?", "delete")
    api.call("DELETE", f"/applications/{found['client_id']}")
    if opts.output is Output.json:
        emit({"deleted": True, "client_id": found["client_id"]}, opts.output)
    else:
        typer.echo(f"deleted application {found['display_name']} ({found['client_id']})")


@app.command("add-role")
@shared(Output.json)
def add_role(
    ref: RefArg,
    role: Annotated[str, typer.Argument(help="Role value, e.g. Orders.Write.", show_default=False)],
    *, opts: Shared,
) -> None:
    """Add an app role to a resource (an application with an identifier URI).

    Example: keyless app add-role api://orders Orders.Write
    """
    api = opts.client()
    found = api.resolve_app(ref)
    created = api.call("POST", f"/applications/{found['client_id']}/roles", json_body={"value": role})
    emit({**created, "client_id": found["client_id"]}, opts.output)
