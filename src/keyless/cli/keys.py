"""`keyless key …`: the tenant's token-signing keys, their rotation and emergency retirement."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

import typer
from typer.core import TyperCommand

from keyless.cli.apps import confirmed
from keyless.cli.common import (
    LimitOpt,
    Output,
    emit,
    seconds,
    usage,
    when,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="Token-signing keys: list, rotate, retire.", no_args_is_help=True)


class Alg(StrEnum):
    RS256 = "RS256"
    ES256 = "ES256"


COLUMNS = ("kid", "alg", "status", "created_at", "activates_at", "retire_at")
FORMATTERS = {"created_at": when, "activates_at": when, "retire_at": when}
_ZERO = re.compile(r"0+[smhdy]?")
_DASHED_KID = re.compile(r"-[A-Za-z0-9_-]{42}")


class KidCommand(TyperCommand):
    """A command whose KID argument may start with "-".

    A kid is the key's RFC 7638 thumbprint: 43 base64url characters, and "-" is one of the 64, so
    one key in 64 has a kid that Click would read as a bundle of short options ("No such option:
    -A"). No option of ours has that shape, so such a word before any "--" is moved behind one and
    read as the argument; `keyless key retire -- KID` works too, as everywhere in Click.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Any: typer >= 0.22 vendors click
        cut = args.index("--") if "--" in args else len(args)
        head, tail = args[:cut], args[cut + 1:]
        kids = [word for word in head if _DASHED_KID.fullmatch(word)]
        if kids:
            args = [word for word in head if word not in kids] + ["--", *kids, *tail]
        return super().parse_args(ctx, args)


def activation_delay(value: str) -> int:
    """A duration like 10m; 0 (or 0s) means "sign with the new key at once"."""
    if _ZERO.fullmatch(value.strip()):
        return 0
    return seconds(value, "--activate-in")


@app.command("list")
@shared(Output.table)
def list_keys(
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List signing keys: the active one, the next (published, not yet signing), previous and retired.

    Example: keyless key list
    """
    rows: list[dict[str, Any]] = opts.client().collect("/keys", limit=limit)
    emit(rows, opts.output, columns=COLUMNS if opts.output is Output.table else None, formatters=FORMATTERS)


@app.command("rotate")
@shared(Output.json)
def rotate(
    activate_in: Annotated[str | None, typer.Option(
        "--activate-in", help="Start signing with the new key after this delay, e.g. 10m; 0 for as soon as "
        "every replica publishes it (2 s) (default: long enough for clients to refresh the JWKS).")] = None,
    alg: Annotated[Alg | None, typer.Option("--alg", help="Algorithm of the new key "
                                            "(default: the tenant's).")] = None,
    *, opts: Shared,
) -> None:
    """Publish a new signing key now; it signs after the activation delay, and the old keys stay
    published until every token they signed has expired.

    Example: keyless key rotate --activate-in 10m
    """
    delay = activation_delay(activate_in) if activate_in is not None else None
    if delay is not None and delay > 7 * 86400:
        usage("--activate-in: at most 7 days")
    key = opts.client().call(
        "POST", "/keys/rotate", json_body={"activate_in": delay, "alg": alg.value if alg else None}
    )
    emit(key, opts.output, columns=COLUMNS if opts.output is Output.table else None, formatters=FORMATTERS)


@app.command("retire", cls=KidCommand)
@shared(Output.json)
def retire(
    kid: Annotated[str, typer.Argument(metavar="KID", help="Key id (from `keyless key list`).",
                                       show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm: tokens this key signed stop "
                                      "validating at once.")] = False,
    *, opts: Shared,
) -> None:
    """Remove a key from the JWKS at once (after a compromise). Tokens it signed stop validating.

    Example: keyless key retire 2a1f9c0e --yes
    """
    api = opts.client()
    confirmed(yes, f"Retire signing key {kid}? Tokens it signed stop validating.", "retire a key")
    api.call("POST", f"/keys/{quote(kid, safe='')}/retire")
    if opts.output is Output.json:
        emit({"retired": True, "kid": kid}, opts.output)
    else:
        typer.echo(f"retired signing key {kid}")
