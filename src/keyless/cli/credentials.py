"""`keyless credentials list`: the inventory of every credential of every owner — secrets,
certificates and federated credentials of applications, managed identities and hosts — with expiry,
last use and the address of that use (docs/cli.md, "Credential inventory"). Never secret material:
a secret is shown by its hint."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from keyless.cli.common import (
    LimitOpt,
    Output,
    emit,
    seconds,
    when,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="The credential inventory: every credential of every owner.", no_args_is_help=True)

Kind = StrEnum("Kind", {k: k for k in ("secret", "certificate", "federated")})  # type: ignore[misc]
OwnerKind = StrEnum("OwnerKind", {k: k for k in ("application", "identity", "host")})  # type: ignore[misc]
CredentialState = StrEnum("CredentialState", {k: k for k in ("active", "not_yet_valid", "expired")})  # type: ignore[misc]
COLUMNS = ("kind", "owner_kind", "owner_name", "label", "state", "expires_at", "last_used_at", "last_used_from", "id")
FORMATTERS = {c: when for c in ("created_at", "not_before", "expires_at", "last_used_at")}


@app.command("list")
@shared(Output.table)
def list_credentials(
    expiring: Annotated[str | None, typer.Option(
        "--expiring", help="Only active credentials that expire within this time (e.g. 30d).")] = None,
    unused: Annotated[str | None, typer.Option(
        "--unused", help="Only credentials with no sign-in for this long (never used: made that long ago).")] = None,
    kind: Annotated[Kind | None, typer.Option("--kind", help="Only this kind.")] = None,
    owner_kind: Annotated[OwnerKind | None, typer.Option("--owner-kind", help="Only this owner kind.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's (client id or host id).")] = None,
    state: Annotated[CredentialState | None, typer.Option("--state", help="Only credentials in this state.")] = None,
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List credentials of every kind and owner, oldest first, with expiry, last use and its source.

    Example: keyless credentials list --expiring 30d --unused 90d --kind secret -o json
    """
    params: dict[str, Any] = {
        "expiring_within": seconds(expiring, "--expiring") if expiring else None,
        "unused_for": seconds(unused, "--unused") if unused else None,
        "kind": str(kind) if kind else None, "owner_kind": str(owner_kind) if owner_kind else None,
        "owner": owner, "state": str(state) if state else None,
    }
    rows = opts.client().collect("/credentials", params=params, limit=limit)
    emit(rows, opts.output, columns=COLUMNS, formatters=FORMATTERS)
