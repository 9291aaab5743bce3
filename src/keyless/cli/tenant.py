"""`keyless tenant …`: the tenant's settings (token lifetime, signing algorithm, secret limits)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from keyless.cli.common import (
    Output,
    emit,
    fail,
    seconds,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="Tenant settings.", no_args_is_help=True)

DURATIONS = ("token_lifetime", "default_secret_lifetime", "max_secret_lifetime")


class SigningAlg(StrEnum):
    RS256 = "RS256"
    ES256 = "ES256"


class AudienceMode(StrEnum):
    entra = "entra"
    strict = "strict"


def _span(seconds: Any) -> str:
    """3600 → '3600 (1h)': seconds as stored, plus the largest exact unit."""
    value = int(seconds)
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{value} ({value // size}{unit})"
    return f"{value} ({value}s)"


def _show(data: dict[str, Any], output: Output) -> None:
    emit(data, output, formatters={k: _span for k in DURATIONS})


def _seconds(value: str | None, option: str) -> int | None:
    return None if value is None else seconds(value, option)


@app.command("show")
@shared(Output.json)
def show(*, opts: Shared) -> None:
    """Show the tenant: id, issuer, token lifetime, signing algorithm and secret limits (in seconds).

    Example: keyless tenant show -o table
    """
    _show(opts.client().call("GET", "/tenant"), opts.output)


@app.command("set")
@shared(Output.json)
def set_settings(
    token_lifetime: Annotated[str | None, typer.Option(
        "--token-lifetime", help="Access token lifetime, 5m to 24h, e.g. 1h.")] = None,
    signing_alg: Annotated[SigningAlg | None, typer.Option(
        "--signing-alg",
        help="Token signing algorithm: a key of this type is published now and signs after the usual delay.")] = None,
    default_secret_lifetime: Annotated[str | None, typer.Option(
        "--default-secret-lifetime", help="Lifetime of new secrets without --expires-in, e.g. 180d.")] = None,
    max_secret_lifetime: Annotated[str | None, typer.Option(
        "--max-secret-lifetime", help="Longest lifetime a secret may have, 1d to 2y.")] = None,
    assertion_audience: Annotated[AudienceMode | None, typer.Option(
        "--assertion-audience", help="Client assertion audiences: entra (Entra-compatible) or strict.")
    ] = None,
    *, opts: Shared,
) -> None:
    """Change tenant settings; only the options given change. Prints the tenant afterwards.

    Example: keyless tenant set --token-lifetime 1h --max-secret-lifetime 1y
    """
    body = {
        "token_lifetime": _seconds(token_lifetime, "--token-lifetime"),
        "signing_alg": signing_alg.value if signing_alg else None,
        "default_secret_lifetime": _seconds(default_secret_lifetime, "--default-secret-lifetime"),
        "max_secret_lifetime": _seconds(max_secret_lifetime, "--max-secret-lifetime"),
        "assertion_audience": assertion_audience.value if assertion_audience else None,
    }
    body = {k: v for k, v in body.items() if v is not None}
    if not body:
        fail("nothing to change: pass at least one setting (see keyless tenant set --help)")
    _show(opts.client().call("PATCH", "/tenant", json_body=body), opts.output)
