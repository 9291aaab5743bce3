"""`keyless posture`: where each application and managed identity stands on the credential ladder,
what is risky about its credentials, and the commands that move it up (docs/ladder.md).

Follows the API's pages to the end, so the output covers every workload (docs/cli.md). Built to print
20,000 workloads in well under a second of its own (docs/benchmarks.md, "Posture"): the table is laid
out here rather than by rich, whose tables measure and wrap every cell (13 CPU-seconds for 20,000 rows),
and JSON is encoded by orjson whenever that gives the very bytes `json.dumps` would.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from enum import StrEnum
from itertools import chain
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.cells import cell_len

from keyless.cli.common import (
    CliError,
    ManagementClient,
    Output,
    fail,
    safe_cell,
)
from keyless.cli.options import Shared, shared
from keyless.cli.times import iso_instant, iso_times
from keyless.domain.ladder import RISKS, RUNGS
from keyless.gc_pause import gc_paused
from keyless.paging import MAX_REPORT_LIMIT
from keyless.text import terminal

Rung = StrEnum("Rung", {r: r for r in ("none", *RUNGS)})  # type: ignore[misc]
Risk = StrEnum("Risk", {r: r for r in RISKS})  # type: ignore[misc]
PAGE = MAX_REPORT_LIMIT  # the API's bound for this report: 4 requests for 20,000 workloads
COLUMNS = ("display_name", "client_id", "kind", "rung", "risks", "next_step")
# The keys of a workload and of its parts (docs/api.md, "Posture"), and which of them hold instants.
WORKLOAD_KEYS = {"client_id", "display_name", "kind", "identity_kind", "rung", "hosts", "signins", "sources",
                 "agent_hosts", "last_signin_at", "credentials", "risks", "next_step"}
CREDENTIAL_KEYS = {"id", "kind", "display_name", "label", "state", "created_at", "expires_at", "last_used_at",
                   "signins", "sources", "from_internal_ca"}
RISK_KEYS = {"risk", "message", "credential_id", "fix", "by_next_step"}
STEP_KEYS = {"summary", "commands", "guide"}


def _app_id(api: ManagementClient, ref: str) -> str:
    """An application by name, client id or identifier URI, else a managed identity by name or resource id."""
    try:
        return str(api.resolve_app(ref)["client_id"])
    except CliError:
        pass
    try:
        return str(api.call("GET", "/identities", params={"ref": ref})[0]["client_id"])
    except CliError:
        fail(f"no application or managed identity {ref!r} in this tenant")


def _pages(api: ManagementClient, params: dict[str, Any]) -> Iterator[bytes]:
    """Every page of the report as it arrives, following each answer's `Link: rel="next"`. The next
    page is asked for on a worker thread while the caller parses this one, so the server builds page
    n+1 while the CLI handles page n (docs/benchmarks.md, "Posture"). Only that thread uses `api`
    until the last page is in."""
    url, query = api.url_of("/posture", params)
    seen: set[str] = set()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="posture-pages") as pool:
        pending: Future[httpx.Response] | None = pool.submit(api.get_page, url, query)
        while pending is not None:
            resp = pending.result()
            following = api.next_page(resp, seen)
            pending = None if following is None else pool.submit(api.get_page, following, None)
            yield resp.content


def fetch(api: ManagementClient, *, client_id: str | None, rung: str | None, risk: str | None,
          summary: bool = False) -> Iterator[dict[str, Any]]:
    """Each page of the report, parsed, in order ({"score": … on the first, "workloads": […]}).
    `summary`: only what the table shows (`view=summary`, docs/api.md "Posture"), a tenth of the bytes
    to build, send and parse."""
    params: dict[str, Any] = {"client_id": client_id, "rung": rung, "risk": risk, "limit": PAGE,
                              "view": "summary" if summary else None}
    return (orjson.loads(content) for content in _pages(api, params))


def _percent(shares: dict[str, Any]) -> str:
    return ", ".join(f"{rung} {round(100 * share)}%" for rung, share in shares["shares"].items())


def _print_json(report: dict[str, Any]) -> None:
    """What `emit(report, Output.json)` prints, byte for byte."""
    sys.stdout.write(_json_text(report["score"], [report["workloads"]]))


def _json_text(score: Any, pages: Iterable[list[dict[str, Any]]]) -> str:
    """`json.dumps(iso_times({"score": score, "workloads": [every page's workloads]}), indent=2)` and a
    newline, built page by page as the pages arrive (each workload encoded at its depth). Printed
    only once complete, so a failed page prints nothing."""
    parts = ['{\n  "score": ', _encoded(iso_times(score), 1), ',\n  "workloads": [']
    for workloads in pages:
        parts += [f"\n    {_encoded(_iso(w), 2)}," for w in workloads]
    if len(parts) == 3:
        return "".join(parts) + "]\n}\n"
    parts[-1] = parts[-1][:-1]  # no comma after the last workload
    return "".join(parts) + "\n  ]\n}\n"


def _encoded(value: Any, depth: int) -> str:
    """`value` as `json.dumps(value, indent=2)` writes it `depth` levels deep. orjson writes characters
    outside printable ASCII raw where `json.dumps` escapes them (`\\u202e`, `\\u007f`), so such a value,
    and only such a one, goes through `json.dumps`; the report's only floats are shares rounded to 4
    places, which both encoders write alike (instants are ISO 8601 strings by then). A newline in
    either's output is layout (one inside a string is escaped)."""
    out = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    text = out.decode("ascii") if out.isascii() and b"\x7f" not in out else json.dumps(value, indent=2, default=str)
    return text.replace("\n", "\n" + "  " * depth) if depth else text


def _iso(w: dict[str, Any]) -> Any:
    """`iso_times(w)`, without walking every value: a workload of the documented shape holds instants at
    four known keys only, rewritten in place (the parsed page is this command's own). Any other shape (a
    newer server's extra key) takes the general walk."""
    step = w.get("next_step")
    if (w.keys() != WORKLOAD_KEYS or (step is not None and step.keys() != STEP_KEYS)
            or any(r.keys() != RISK_KEYS for r in w["risks"])
            or any(c.keys() != CREDENTIAL_KEYS for c in w["credentials"])):
        return iso_times(w)
    w["last_signin_at"] = iso_instant(w["last_signin_at"])
    for c in w["credentials"]:
        c["created_at"] = iso_instant(c["created_at"])
        c["expires_at"] = iso_instant(c["expires_at"])
        c["last_used_at"] = iso_instant(c["last_used_at"])
    return w


def _table_lines(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows under a header, each column padded to its widest cell (terminal cells, so wide characters
    line up); the last column unpadded. Every cell is shown through `text.terminal` (control and format
    characters escaped, docs/cli.md "Output"), and nothing is interpreted as markup."""
    cells = [tuple(terminal(c) for c in row) for row in [COLUMNS, *rows]]
    widths = [max(map(cell_len, column)) for column in list(zip(*cells, strict=True))[:-1]]
    return ["  ".join([*(c + " " * (w - cell_len(c)) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
            for row in cells]


def _print_table(report: dict[str, Any], detailed: bool) -> None:
    rows = [(w["display_name"], w["client_id"], w["kind"], w["rung"],
             ", ".join(dict.fromkeys(r["risk"] for r in w["risks"])) or "-",
             (w["next_step"] or {}).get("summary", "-")) for w in report["workloads"]]
    sys.stdout.write("\n".join(_table_lines(rows)) + "\n")
    score = report["score"]
    if score is not None:
        typer.echo(f"ladder index {score['index']}/100; sign-ins in the last {score['window_days']} days: "
                   f"{_percent(score['signins'])}; workloads: {_percent(score['workloads'])}; "
                   f"{score['without_credentials']} without a working credential")
    if not detailed:
        return
    for w in report["workloads"]:
        for r in w["risks"]:
            typer.echo(safe_cell(f"risk {r['risk']}: {r['message']}"))
        step = w["next_step"]
        if step is not None:
            typer.echo(safe_cell(f"next step: {step['summary']} (see {step['guide']})"))
            for command in step["commands"]:
                typer.echo("  " + safe_cell(command))


@shared(Output.table)
def posture(
    app_ref: Annotated[str | None, typer.Option(
        "--app", metavar="REF", help="Only this application (name, client id or identifier URI) or identity name; "
        "shows its risks and the commands of its next step.")] = None,
    rung: Annotated[Rung | None, typer.Option("--rung", help="Only workloads on this rung.")] = None,
    risk: Annotated[Risk | None, typer.Option("--risk", help="Only workloads with this risk factor.")] = None,
    steps: Annotated[bool, typer.Option("--steps", help="Also print every workload's risks and commands.")] = False,
    *, opts: Shared,
) -> None:
    """Each workload's rung on the credential ladder (secret, certificate, federated, managed identity),
    its risk factors and the commands of its next step up, with the tenant's score (docs/ladder.md).

    Example: keyless posture --rung secret --steps

    Example: keyless posture --app orders-worker -o json
    """
    api = opts.client()
    client_id = _app_id(api, app_ref) if app_ref is not None else None
    detailed = steps or app_ref is not None
    with gc_paused():  # ~1,000,000 short-lived objects without cycles for 20,000 workloads (keyless.gc_pause)
        pages = fetch(api, client_id=client_id, rung=rung.value if rung else None,
                      risk=risk.value if risk else None, summary=opts.output is not Output.json and not detailed)
        first = next(pages)
        if opts.output is Output.json:
            sys.stdout.write(_json_text(first["score"], chain([first["workloads"]], (p["workloads"] for p in pages))))
            return
        workloads = list(first["workloads"])
        for page in pages:
            workloads += page["workloads"]
        _print_table({"score": first["score"], "workloads": workloads}, detailed=detailed)
