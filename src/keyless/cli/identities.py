"""`keyless identity …`: user-assigned managed identities, their hosts and workload bindings."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from keyless.cli.common import (
    LimitOpt,
    ManagementClient,
    Output,
    emit,
    fail,
    usage,
    when,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="Managed identities: system-assigned (one per host) and user-assigned.",
                  no_args_is_help=True)

IdentityArg = Annotated[str, typer.Argument(metavar="IDENTITY",
                                            help="Name, client id, object id or resource id.", show_default=False)]
HostOpt = Annotated[str, typer.Option("--host", metavar="HOST", help="Host name or id.", show_default=False)]
COLUMNS = ("client_id", "name", "kind", "object_id", "resource_id")
FORMATTERS = {"created_at": when}


@app.command("create")
@shared(Output.json)
def create(
    name: Annotated[str, typer.Argument(help="Name: letters, digits, '.', '_', '-'.", show_default=False)],
    *, opts: Shared,
) -> None:
    """Create a user-assigned identity. Grant it roles with `keyless grant CLIENT_ID RESOURCE ROLE`.

    Example: keyless identity create billing-api
    """
    emit(opts.client().call("POST", "/identities", json_body={"name": name}), opts.output,
         formatters=FORMATTERS)


@app.command("list")
@shared(Output.table)
def list_identities(
    kind: Annotated[str | None, typer.Option("--kind", help="system or user.")] = None,
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List managed identities.

    Example: keyless identity list --kind user
    """
    if kind not in {None, "system", "user"}:
        usage("--kind must be system or user")
    rows = opts.client().collect("/identities", params={"kind": kind}, limit=limit)
    emit(rows, opts.output, columns=COLUMNS)


@app.command("delete")
@shared(Output.json)
def delete(
    identity: IdentityArg,
    *, opts: Shared,
) -> None:
    """Delete a user-assigned identity (with its assignments, bindings and grants).

    Example: keyless identity delete billing-api
    """
    api = opts.client()
    api.call("DELETE", f"/identities/{_path(api, identity)}")
    if opts.output is Output.json:
        emit({"deleted": True, "identity": identity}, opts.output)
    else:
        typer.echo(f"deleted identity {identity}")


@app.command("assign")
@shared(Output.json)
def assign(
    identity: IdentityArg,
    host: HostOpt,
    remove: Annotated[bool, typer.Option("--remove", help="Take the identity away from the host instead.")] = False,
    *, opts: Shared,
) -> None:
    """Let a host's agent get tokens for a user-assigned identity (or stop it, with --remove).

    Example: keyless identity assign billing-api --host build-01
    """
    api = opts.client()
    path = f"/identities/{_path(api, identity)}/hosts/{quote(host, safe='')}"
    if remove:
        api.call("DELETE", path)
        emit({"identity": identity, "host": host, "assigned": False}, opts.output)
        return
    found = api.call("PUT", path)
    emit({**found, "host": host, "assigned": True}, opts.output, formatters=FORMATTERS)


@app.command("bind")
@shared(Output.json)
def bind(
    identity: IdentityArg,
    host: HostOpt,
    uid: Annotated[str | None, typer.Option("--uid", help="Unix user name or number of the caller.")] = None,
    gid: Annotated[str | None, typer.Option("--gid", help="Unix group name or number of the caller.")] = None,
    exe: Annotated[str | None, typer.Option("--exe", help="Absolute path of the caller's executable.")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="systemd unit of the caller.")] = None,
    *, opts: Shared,
) -> None:
    """Let local callers on a host that match every given selector use the identity through the
    agent's Unix socket. Names are resolved on this machine; give numbers when it is not the host.

    Example: keyless identity bind billing-api --host build-01 --uid billing
    """
    body = {"host": host, "uid": _number(uid, "user"), "gid": _number(gid, "group"), "exe": exe, "unit": unit}
    api = opts.client()
    emit(api.call("POST", f"/identities/{_path(api, identity)}/bindings", json_body=body), opts.output,
         formatters=FORMATTERS)


def _path(api: ManagementClient, identity: str) -> str:
    """The URL path segment for an identity reference; resource ids (with slashes) are resolved first."""
    if "/" in identity:
        identity = api.call("GET", "/identities", params={"ref": identity})[0]["client_id"]
    return quote(identity, safe="")


def _number(value: str | None, kind: str) -> int | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    import grp
    import pwd

    try:
        return pwd.getpwnam(value).pw_uid if kind == "user" else grp.getgrnam(value).gr_gid
    except KeyError:
        fail(f"no local {kind} named {value!r}; give the number")


@app.command("bindings")
@shared(Output.table)
def bindings(
    host: Annotated[str | None, typer.Option("--host", metavar="HOST", help="Only this host's bindings.")] = None,
    identity: Annotated[str | None, typer.Option("--identity", help="Only this identity's bindings.")] = None,
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List workload bindings.

    Example: keyless identity bindings --host build-01
    """
    rows = opts.client().collect("/bindings", params={"host": host, "identity": identity},
                                                limit=limit)
    emit(rows, opts.output, columns=("id", "identity_client_id", "host_id", "uid", "gid", "exe", "unit"))


@app.command("unbind")
@shared(Output.json)
def unbind(
    binding_id: Annotated[str, typer.Argument(help="Binding id (from `keyless identity bindings`).",
                                              show_default=False)],
    *, opts: Shared,
) -> None:
    """Remove a workload binding.

    Example: keyless identity unbind 0b7e5c1a-3f2d-4c8e-9b6a-1d2e3f4a5b6c
    """
    opts.client().call("DELETE", f"/bindings/{quote(binding_id, safe='')}")
    emit({"removed": True, "id": binding_id}, opts.output)
