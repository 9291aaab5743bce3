"""`keyless key …`: the tenant's token-signing keys, their rotation and emergency retirement."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

import typer

from keyless.cli.apps import confirmed
from keyless.cli.common import (
    DEFAULT_DATA_DIR,
    CaOpt,
    DataDirOpt,
    LimitOpt,
    Output,
    OutputOpt,
    ServerOpt,
    client,
    emit,
    seconds,
    usage,
    when,
)

app = typer.Typer(help="Token-signing keys: list, rotate, retire.", no_args_is_help=True)


class Alg(StrEnum):
    RS256 = "RS256"
    ES256 = "ES256"


COLUMNS = ("kid", "alg", "status", "created_at", "activates_at", "retire_at")
FORMATTERS = {"created_at": when, "activates_at": when, "retire_at": when}
_ZERO = re.compile(r"0+[smhdy]?")


def activation_delay(value: str) -> int:
    """A duration like 10m; 0 (or 0s) means "sign with the new key at once"."""
    if _ZERO.fullmatch(value.strip()):
        return 0
    return seconds(value, "--activate-in")


@app.command("list")
def list_keys(
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
    output: OutputOpt = Output.table,
    limit: LimitOpt = None,
) -> None:
    """List signing keys: the active one, the next (published, not yet signing), previous and retired.

    Example: keyless key list
    """
    rows: list[dict[str, Any]] = client(data_dir, server, ca).collect("/keys", limit=limit)
    emit(rows, output, columns=COLUMNS if output is Output.table else None, formatters=FORMATTERS)


@app.command("rotate")
def rotate(
    activate_in: Annotated[str | None, typer.Option(
        "--activate-in", help="Start signing with the new key after this delay, e.g. 10m; 0 for as soon as "
        "every replica publishes it (2 s) (default: long enough for clients to refresh the JWKS).")] = None,
    alg: Annotated[Alg | None, typer.Option("--alg", help="Algorithm of the new key "
                                            "(default: the tenant's).")] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Publish a new signing key now; it signs after the activation delay, and the old keys stay
    published until every token they signed has expired.

    Example: keyless key rotate --activate-in 10m
    """
    delay = activation_delay(activate_in) if activate_in is not None else None
    if delay is not None and delay > 7 * 86400:
        usage("--activate-in: at most 7 days")
    key = client(data_dir, server, ca).call(
        "POST", "/keys/rotate", json_body={"activate_in": delay, "alg": alg.value if alg else None}
    )
    emit(key, output, columns=COLUMNS if output is Output.table else None, formatters=FORMATTERS)


@app.command("retire")
def retire(
    kid: Annotated[str, typer.Argument(metavar="KID", help="Key id (from `keyless key list`).",
                                       show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm: tokens this key signed stop "
                                      "validating at once.")] = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    server: ServerOpt = None,
    ca: CaOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Remove a key from the JWKS at once (after a compromise). Tokens it signed stop validating.

    Example: keyless key retire 2a1f9c0e --yes
    """
    api = client(data_dir, server, ca)
    confirmed(yes, f"Retire signing key {kid}? Tokens it signed stop validating.", "retire a key")
    api.call("POST", f"/keys/{quote(kid, safe='')}/retire")
    if output is Output.json:
        emit({"retired": True, "kid": kid}, output)
    else:
        typer.echo(f"retired signing key {kid}")
