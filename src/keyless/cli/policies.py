"""`keyless policy …`: credential policies (docs/policies.md). A policy is a JSON document of rules,
each in audit or enforce mode; `set` replaces the tenant's default or one application's override
whole, and `test` is the dry run an operator reads before switching a rule to enforce."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from keyless.cli.common import (
    Output,
    emit,
    fail,
    when,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="Credential policies: show, set, test (dry run).", no_args_is_help=True)

AppOpt = Annotated[str | None, typer.Option(
    "--app", help="An application's override (client id, identifier URI or unique name) instead of the tenant's "
    "default.")]
FileOpt = Annotated[Path | None, typer.Option(
    "--file", help="The policy document, JSON ('-': stdin); see docs/policies.md.")]
FINDING_COLUMNS = ("owner", "credential_id", "reason", "mode", "refused", "source", "time")


def _document(file: Path | None, clear: bool) -> Any:
    if clear:
        if file is not None:
            fail("give --file or --clear, not both")
        return {}
    if file is None:
        fail("give the policy with --file FILE (or --file - for stdin), or --clear")
    try:
        raw = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc.__class__.__name__}")
    try:
        return json.loads(raw)
    except ValueError:
        fail(f"{file} is not JSON: a policy is a JSON object of rules (docs/policies.md)")


@app.command("show")
@shared(Output.json)
def show(
    app_ref: AppOpt = None,
    *, opts: Shared,
) -> None:
    """Show the tenant's default policy, or an application's override and the policy in effect for it.

    Example: keyless policy show --app orders-worker
    """
    api = opts.client()
    if app_ref is None:
        emit(api.call("GET", "/policy"), opts.output)
        return
    found = api.resolve_app(app_ref)
    emit(api.call("GET", f"/applications/{found['client_id']}/policy"), opts.output)


@app.command("set")
@shared(Output.json)
def set_policy(
    file: FileOpt = None,
    app_ref: AppOpt = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every rule at this level.")] = False,
    *, opts: Shared,
) -> None:
    """Replace the tenant's default policy (or, with --app, one application's override) with a document.
    Run `keyless policy test` with the same file first.

    Example: keyless policy set --file policy.json
    """
    doc = _document(file, clear)
    api = opts.client()
    if app_ref is None:
        emit(api.call("PUT", "/policy", json_body=doc), opts.output)
        return
    found = api.resolve_app(app_ref)
    emit(api.call("PUT", f"/applications/{found['client_id']}/policy", json_body=doc), opts.output)


@app.command("test")
@shared(Output.table)
def test_policy(
    file: FileOpt = None,
    app_ref: AppOpt = None,
    days: Annotated[int, typer.Option("--days", min=1, max=90, help="How far back to read sign-ins.")] = 30,
    *, opts: Shared,
) -> None:
    """Dry run: every existing credential and recent successful sign-in the candidate policy would refuse
    (enforce) or report (audit), and what its reaping rule would disable or delete now. Changes nothing.

    Example: keyless policy test --file policy.json --days 7 -o json
    """
    doc = _document(file, False)
    api = opts.client()
    body: dict[str, Any] = {"policy": doc, "days": days}
    if app_ref is not None:
        body["client_id"] = api.resolve_app(app_ref)["client_id"]
    result: dict[str, Any] = api.call("POST", "/policy/test", json_body=body)
    if opts.output is Output.json:
        emit(result, opts.output)
        return
    for title, key in (("credentials", "credentials"), ("recent sign-ins", "signins")):
        typer.echo(f"{title}: {len(result[key])} finding(s), {result['refused_' + key]} refused")
        if result[key]:
            emit(result[key], opts.output, columns=list(FINDING_COLUMNS), formatters={"time": when})
    reaping = result.get("reaping", [])
    typer.echo(f"reaping: {len(reaping)} finding(s), {result.get('reaped', 0)} would be disabled or deleted now")
    if reaping:
        emit(reaping, opts.output, columns=["owner", "credential_id", "reason", "mode", "refused", "message"])
