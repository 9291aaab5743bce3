"""`keyless log …`: the sign-in log (every token request) and the audit log (every directory change)."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from keyless.cli.common import (
    Output,
    emit,
    seconds,
    when,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="Sign-in and audit logs, newest first.", no_args_is_help=True)


class Result(StrEnum):
    success = "success"
    failure = "failure"


ClientOpt = Annotated[str | None, typer.Option("--client", metavar="ID", help="Only events of this client id.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Only events newer than this, e.g. 15m, 1h, 7d.")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, help="At most this many events, newest first.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every matching event (follows the pages; ignores --limit).")]

SIGNIN_COLUMNS = ("time", "client_id", "result", "error", "detail", "credential_type", "resource", "source")
AUDIT_COLUMNS = ("time", "actor", "action", "target_type", "target_id", "details")


def since_epoch(value: str | None) -> float | None:
    return None if value is None else time.time() - seconds(value, "--since")


def _show(rows: list[dict[str, Any]], output: Output, columns: tuple[str, ...]) -> None:
    emit(rows, output, columns=columns if output is Output.table else None, formatters={"time": when})


@app.command("signins")
@shared(Output.table)
def signins(
    client_id: ClientOpt = None,
    result: Annotated[Result | None, typer.Option("--result", help="Only successes or only failures.")] = None,
    since: SinceOpt = None,
    limit: LimitOpt = 100,
    every: AllOpt = False,
    *, opts: Shared,
) -> None:
    """Show token requests: who asked, for what, and why a request was refused.

    Example: keyless log signins --result failure --since 1h
    """
    start = since_epoch(since)
    rows = opts.client().collect(
        "/logs/signins", params={"client_id": client_id, "result": result.value if result else None, "since": start},
        limit=None if every else limit,
    )
    _show(rows, opts.output, SIGNIN_COLUMNS)


@app.command("audit")
@shared(Output.table)
def audit(
    client_id: Annotated[str | None, typer.Option(
        "--client", metavar="ID", help="Only changes made by or to this client id.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action, e.g. secret.add.")] = None,
    since: SinceOpt = None,
    limit: LimitOpt = 100,
    every: AllOpt = False,
    *, opts: Shared,
) -> None:
    """Show directory changes: who created, changed or removed which object, and when.

    Example: keyless log audit --action secret.add --since 7d
    """
    start = since_epoch(since)
    rows = opts.client().collect(
        "/logs/audit", params={"client_id": client_id, "action": action, "since": start},
        limit=None if every else limit,
    )
    _show(rows, opts.output, AUDIT_COLUMNS)
