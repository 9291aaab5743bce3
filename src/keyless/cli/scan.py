"""`keyless scan PATH…`: find Keyless client secrets in files and git history, tell which are live and
whose they are, and with `--revoke` revoke the live ones (docs/leaks.md).

The scan itself is offline (`keyless.leaks.scanner`: format + checksum). Each distinct secret found is
then resolved by the server over TLS in a POST body (`/leaks/lookup`), where it is reduced to its keyed
hash; it is never put in a URL, a log line or this command's output, which show the location and the
hint (`kls_abc…`) only (catalog O09). Exit status 1 when a live secret was found (even when `--revoke`
then revoked it: it must still leave the repository), so CI can gate on it; with `--offline`, 1 when
any secret was found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from keyless.cli.common import (
    ManagementClient,
    Output,
    emit,
    fail,
    usage,
)
from keyless.cli.options import Shared, shared
from keyless.leaks.hook import finding_json, result_json, shown
from keyless.leaks.scanner import DEFAULT_MAX_BYTES, Finding, ScanError, ScanResult
from keyless.leaks.scanner import scan as run_scan

LOOKUP_BATCH = 100
COLUMNS = ("location", "secret", "status", "application", "action")


def _resolve(api: ManagementClient, result: ScanResult) -> dict[str, dict[str, Any]]:
    """The server's answer for each distinct secret found (status, owner, secret id)."""
    distinct = list(result.secrets())
    answers: dict[str, dict[str, Any]] = {}
    for start in range(0, len(distinct), LOOKUP_BATCH):
        batch = distinct[start:start + LOOKUP_BATCH]
        found = api.call("POST", "/leaks/lookup", json_body={"secrets": batch})
        answers.update(zip(batch, found, strict=True))
    return answers


def _revoke(api: ManagementClient, findings: list[Finding]) -> dict[str, Any]:
    """Report every location of a live secret; the first report revokes it, each is audited."""
    last: dict[str, Any] = {}
    for f in findings:
        last = api.call("POST", "/leaks", json_body={"secret": f.secret, "location": f.location, "source": "scan"})
    return last


@shared(Output.table)
def scan(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Files, directories or git work trees.",
                                                show_default=False)],
    git: Annotated[bool, typer.Option("--git", help="Also scan the git history (every ref) of each PATH's repository.")]
    = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke every live secret found (needs Keyless.Admin).")]
    = False,
    offline: Annotated[bool, typer.Option("--offline", help="Format + checksum only: no server is asked.")] = False,
    max_file_size: Annotated[int, typer.Option("--max-file-size", metavar="BYTES",
                                               help="Skip (and report) files and blobs larger than this.")]
    = DEFAULT_MAX_BYTES,
    *, opts: Shared,
) -> None:
    """Find Keyless client secrets (never printing them); exit 1 if a live one is found.

    Example: keyless scan --git . --revoke
    """
    if offline and revoke:
        usage("--revoke needs the server; it cannot be combined with --offline")
    if max_file_size < 1:
        usage("--max-file-size must be positive")
    try:
        result = run_scan(paths, git=git, max_bytes=max_file_size)
    except ScanError as exc:
        fail(str(exc))
    answers: dict[str, dict[str, Any]] = {}
    revoked: set[str] = set()
    if not offline and result.findings:
        api = opts.client()
        try:
            answers = _resolve(api, result)
            if revoke:
                for secret, where in result.secrets().items():
                    if answers[secret]["status"] == "active":
                        _revoke(api, where)
                        revoked.add(secret)
        finally:
            api.close()
    rows = []
    for f in result.findings:
        answer = answers.get(f.secret, {})
        row = finding_json(f)
        row.update(status=answer.get("status", "unverified"), client_id=answer.get("client_id"),
                   display_name=answer.get("display_name"), secret_id=answer.get("secret_id"),
                   revoked=f.secret in revoked)
        rows.append(row)
    live = {f.secret for f in result.findings if answers.get(f.secret, {}).get("status") == "active"}
    bad = bool(result.findings) if offline else bool(live)
    if opts.output is Output.json:
        body = {**result_json(result), "findings": rows, "active": len(live), "revoked": len(revoked)}
        emit(body, opts.output, times=False)
    else:
        table = [{"location": r["location"], "secret": shown(r["hint"]), "status": r["status"],
                  "application": r["display_name"] or r["client_id"] or "",
                  "action": "revoked" if r["revoked"] else ""} for r in rows]
        if table:
            emit(table, opts.output, columns=list(COLUMNS))
        for s in result.skipped:
            typer.echo(f"{s.path}: not scanned ({s.reason})", err=True)
        typer.echo(f"{len(result.secrets())} secret(s) found, {len(live)} live, {len(revoked)} revoked "
                   f"({result.files_scanned} files, {result.blobs_scanned} git blobs scanned)", err=True)
    if bad:
        raise typer.Exit(1)
