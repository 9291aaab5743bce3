"""`keyless cert …`: certificate credentials. Only the certificate is registered; the private key is
made (or kept) on the application's host and never sent anywhere."""

from __future__ import annotations

import base64
import os
import re
import time
from pathlib import Path
from typing import Annotated, Any, cast
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
from keyless.crypto.certificates import CertificateRejected, load_certificate
from keyless.crypto.client_keys import (
    ClientKeyKind,
    certificate_signing_request,
    generate_client_key,
    private_key_pem,
    self_signed_certificate,
)

app = typer.Typer(help="Certificate credentials: new key pair + certificate, add, list, revoke.",
                  no_args_is_help=True)

AppArg = Annotated[str, typer.Argument(
    metavar="APP", help="Client id (or identifier URI or unique display name) of the application.",
    show_default=False)]

SELF_SIGNED_DAYS = 365
CA_DAYS = 90
LIST_COLUMNS = ("id", "display_name", "subject", "key", "x5t_s256", "not_after", "last_used_at")
HEADINGS = {"display_name": "name", "not_after": "expires", "last_used_at": "last used"}


def _file_stem(found: dict[str, Any]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", str(found.get("display_name") or "")).strip("-.")
    return stem or str(found["client_id"])


def _create_private(path: Path, data: bytes) -> None:
    """Write a key file readable by its owner only; never replace an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{path} already exists: refusing to overwrite it (use --out to choose another directory)")
    except OSError as exc:
        fail(f"cannot create {path}: {exc.strerror or type(exc).__name__}")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _create_public(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        fail(f"{path} already exists: refusing to overwrite it")
    except OSError as exc:
        fail(f"cannot create {path}: {exc.strerror or type(exc).__name__}")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _register(api: ManagementClient, found: dict[str, Any], key_kind: ClientKeyKind, *, use_ca: bool, days: int,
              name: str) -> tuple[bytes, dict[str, Any], bytes]:
    """Make the key pair here and register its certificate: (key PEM, certificate record, certificate PEM)."""
    key = generate_client_key(key_kind)
    common_name = str(found["display_name"])[:64] or str(found["client_id"])
    if use_ca:
        issued: dict[str, Any] = api.call("POST", "/ca/sign", json_body={
            "client_id": found["client_id"], "csr": certificate_signing_request(key, common_name).decode("ascii"),
            "days": days, "display_name": name})
        cert_pem = str(issued.pop("certificate")).encode("ascii")
        return private_key_pem(key), issued, cert_pem
    cert_pem = self_signed_certificate(key, common_name, now=time.time(), days=days)
    record: dict[str, Any] = api.call("POST", f"/applications/{found['client_id']}/certificates",
                                      json_body={"certificate": cert_pem.decode("ascii"), "display_name": name})
    return private_key_pem(key), record, cert_pem


@app.command("new")
@shared(Output.json)
def new(
    app_ref: AppArg,
    out: Annotated[Path, typer.Option("--out", help="Directory for APP-NAME.key and APP-NAME.pem.")] = Path("."),
    self_signed: Annotated[bool, typer.Option(
        "--self-signed/--ca-signed", help="Self-signed certificate, or one issued by the server's local CA "
        "(--ca stays the CA bundle to trust, as in every command).")] = True,
    key_kind: Annotated[str, typer.Option(
        "--key", help="Key type: rsa2048 (what azure-identity supports), p256 or ed25519.")] = "rsa2048",
    days: Annotated[int | None, typer.Option(
        "--days", min=1, help=f"Validity (default: {SELF_SIGNED_DAYS} self-signed, {CA_DAYS} from the CA).",
        show_default=False)] = None,
    name: Annotated[str, typer.Option("--name", help="A note to tell certificates apart.")] = "",
    *, opts: Shared,
) -> None:
    """Make a key pair on this host, register only its certificate, and write both files.

    The key file (mode 0600) is never sent anywhere; existing files are never overwritten.

    Example: keyless cert new orders-worker --out ./secrets --key rsa2048 --days 180
    """
    if key_kind not in ("rsa2048", "p256", "ed25519"):
        usage("--key must be rsa2048, p256 or ed25519")
    kind = cast(ClientKeyKind, key_kind)
    if out.exists() and not out.is_dir():
        fail(f"--out: {out} is not a directory")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new directory for key files is private
    api = opts.client()
    found = api.resolve_app(app_ref)
    stem = _file_stem(found)
    key_path, cert_path = out / f"{stem}.key", out / f"{stem}.pem"
    for path in (key_path, cert_path):
        if path.exists():
            fail(f"{path} already exists: refusing to overwrite it (use --out to choose another directory)")
    lifetime = days if days is not None else (SELF_SIGNED_DAYS if self_signed else CA_DAYS)
    key_pem, record, cert_pem = _register(api, found, kind, use_ca=not self_signed, days=lifetime, name=name)
    _create_private(key_path, key_pem)
    _create_public(cert_path, cert_pem)
    result = {
        "id": record["id"],
        "client_id": record["client_id"],
        "certificate_path": str(cert_path.resolve()),
        "key_path": str(key_path.resolve()),
        "x5t": record["x5t"],
        "x5t_s256": record["x5t_s256"],
        "not_after": record["not_after"],
        "key_type": record["key_type"],
    }
    emit(result, opts.output, formatters={"not_after": when})


@app.command("add")
@shared(Output.json)
def add(
    app_ref: AppArg,
    cert: Annotated[Path, typer.Option("--cert", help="The certificate file (PEM or DER), without its key.",
                                       show_default=False)],
    name: Annotated[str, typer.Option("--name", help="A note to tell certificates apart.")] = "",
    *, opts: Shared,
) -> None:
    """Register an existing certificate. A file that holds a private key is refused and never sent.

    Example: keyless cert add orders-worker --cert worker.pem --name "build agent"
    """
    try:
        data = cert.read_bytes()
    except OSError as exc:
        fail(f"cannot read {cert}: {exc.strerror or type(exc).__name__}")
    try:
        info = load_certificate(data)  # the same gate as the server's: no key material leaves this host
    except CertificateRejected as exc:
        fail(exc.message)
    api = opts.client()
    found = api.resolve_app(app_ref)
    record: dict[str, Any] = api.call("POST", f"/applications/{found['client_id']}/certificates", json_body={
        "certificate": base64.b64encode(info.der).decode("ascii"), "display_name": name})
    emit(record, opts.output, formatters={c: when for c in ("not_before", "not_after", "created_at", "last_used_at")})


@app.command("list")
@shared(Output.table)
def list_certificates(
    app_ref: AppArg,
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List an application's certificates: id, name, subject, key, thumbprint and dates (never key material).

    Example: keyless cert list orders-worker
    """
    api = opts.client()
    found = api.resolve_app(app_ref)
    rows: list[dict[str, Any]] = api.collect(f"/applications/{found['client_id']}/certificates", limit=limit)
    if opts.output is Output.json:
        emit(rows, opts.output)
        return
    table = [{HEADINGS.get(k, k): _column(r, k) for k in LIST_COLUMNS} for r in rows]
    emit(table, opts.output, columns=[HEADINGS.get(k, k) for k in LIST_COLUMNS])


def _column(row: dict[str, Any], key: str) -> Any:
    if key == "key":
        return f"{row.get('key_type')} {row.get('key_size')}"
    if key.endswith("_at") or key == "not_after":
        return when(row.get(key))
    return row.get(key)


@app.command("revoke")
@shared(Output.json)
def revoke(
    app_ref: AppArg,
    certificate_id: Annotated[str, typer.Argument(
        metavar="CERT_ID", help="Id of the certificate (from `keyless cert list`).", show_default=False)],
    *, opts: Shared,
) -> None:
    """Revoke a certificate at once: assertions signed with its key are no longer accepted.

    Example: keyless cert revoke orders-worker 5f0c2a8e-1d5b-4f7e-9a63-0b1c2d3e4f50
    """
    api = opts.client()
    found = api.resolve_app(app_ref)
    api.call("DELETE", f"/applications/{found['client_id']}/certificates/{quote(certificate_id, safe='')}")
    if opts.output is Output.json:
        emit({"revoked": True, "client_id": found["client_id"], "id": certificate_id}, opts.output)
    else:
        typer.echo(f"revoked certificate {certificate_id} of {found['display_name']} ({found['client_id']})")
