"""`keyless ca …`: the server's local certificate authority — its certificate, and certificates it
issues from CSRs made on the applications' own hosts."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from keyless.cli.common import (
    Output,
    emit,
    fail,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="The local CA: show its certificate, sign a CSR for an application.", no_args_is_help=True)


def _pem(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command("show")
@shared(Output.table)
def show(*, opts: Shared) -> None:
    """Print the local CA's certificate (PEM), the trust anchor of the certificates it issues.

    Example: keyless ca show > keyless-ca.pem
    """
    body: dict[str, Any] = opts.client().call("GET", "/ca")
    if opts.output is Output.json:
        emit({"certificate": body["certificate"]}, opts.output)
    else:
        _pem(str(body["certificate"]))


@app.command("sign")
@shared(Output.table)
def sign(
    csr_file: Annotated[Path, typer.Argument(metavar="CSR_FILE", help="PEM certificate signing request.",
                                             show_default=False)],
    app_ref: Annotated[str, typer.Option(
        "--app", help="Client id (or identifier URI or unique display name) of the application.",
        show_default=False)],
    days: Annotated[int, typer.Option("--days", min=1, help="Validity in days.")] = 90,
    name: Annotated[str, typer.Option("--name", help="A note to tell certificates apart.")] = "",
    out: Annotated[Path | None, typer.Option("--out", help="Write the certificate here (never overwrites).",
                                             show_default=False)] = None,
    *, opts: Shared,
) -> None:
    """Issue a client certificate for APP from a CSR and register it; print (or write) the PEM.

    The CA decides the subject, lifetime and extensions; the CSR only proves possession of the key.

    Example: keyless ca sign worker.csr --app orders-worker --days 30 --out worker.pem
    """
    try:
        csr = csr_file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {csr_file} as a PEM CSR: {getattr(exc, 'strerror', None) or type(exc).__name__}")
    api = opts.client()
    found = api.resolve_app(app_ref)
    issued: dict[str, Any] = api.call("POST", "/ca/sign", json_body={
        "client_id": found["client_id"], "csr": csr, "days": days, "display_name": name})
    pem = str(issued["certificate"])
    if out is not None:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            fail(f"{out} already exists: refusing to overwrite it")
        except OSError as exc:
            fail(f"cannot create {out}: {exc.strerror or type(exc).__name__}")
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(pem if pem.endswith("\n") else pem + "\n")
    if opts.output is Output.json:
        emit(issued, opts.output)
    elif out is not None:
        typer.echo(f"issued certificate {issued['id']} for {found['display_name']} ({found['client_id']}): {out}")
    else:
        _pem(pem)
