"""`keyless token …`: get a token as an application would, and look inside one.

`token get` speaks plain OAuth 2.0 to the token endpoint with the application's own credential (a
client secret, or a certificate and its private key for a signed client assertion); it needs the
server's URL and CA but not the CLI's admin credential.
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from keyless.cli.common import (
    Output,
    Target,
    emit,
    fail,
    problem_line,
    trust,
    usage,
    when,
)
from keyless.cli.options import Shared, shared
from keyless.cli.token_requests import post_assertion_token, post_token
from keyless.jose.claims import numeric_date
from keyless.jose.hygiene import InvalidClaim, MalformedJose, loads_strict

app = typer.Typer(help="Access tokens: request one with a client secret or certificate, decode one.",
                  no_args_is_help=True)

CREDENTIAL_ENV = "KEYLESS_CLIENT_SECRET"
TIME_CLAIMS = ("iat", "nbf", "exp")


def _read_stdin(what: str) -> str:
    value = sys.stdin.read().strip()
    if not value:
        fail(f"no {what} on stdin")
    return value


def _secret(option: str | None) -> str:
    if option == "-":
        return _read_stdin("secret")
    if option:
        return option
    from_env = os.environ.get(CREDENTIAL_ENV)
    if from_env:
        return from_env
    fail(f"no client secret: pass --secret S, --secret - (stdin) or set {CREDENTIAL_ENV}")


def _key_password(variable: str | None) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        fail(f"--key-password-env: the environment variable {variable} is not set")
    return value


def request_token(target: Target, client_id: str, secret: str, scope: str, *, basic: bool) -> httpx.Response:
    with httpx.Client(verify=trust(target.ca), timeout=30, follow_redirects=False) as http:
        return post_token(http, target, client_id, secret, scope, basic=basic)


@app.command("get")
@shared(Output.json)
def get(
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID", help="The application's client id.",
                                             show_default=False)],
    scope: Annotated[str, typer.Option("--scope", help="Resource identifier URI + /.default.",
                                       show_default=False)],
    secret: Annotated[str | None, typer.Option(
        "--secret", help=f"Client secret, or - to read it from stdin (default: ${CREDENTIAL_ENV}).",
        show_default=False)] = None,
    basic: Annotated[bool, typer.Option("--basic", help="Send the credential with HTTP Basic "
                                        "(client_secret_basic) instead of in the body.")] = False,
    cert: Annotated[Path | None, typer.Option(
        "--cert", help="PEM certificate registered on the application: authenticate with a client assertion "
        "(private_key_jwt) instead of a secret.", show_default=False)] = None,
    key: Annotated[Path | None, typer.Option("--key", help="PEM private key of --cert.", show_default=False)] = None,
    key_password_env: Annotated[str | None, typer.Option(
        "--key-password-env", metavar="VAR", help="Environment variable holding the password of an encrypted --key.",
        show_default=False)] = None,
    *, opts: Shared,
) -> None:
    """Request an access token with the client credentials grant and print the token response.

    With --cert and --key the request carries a client assertion signed by the key (for the tenant's
    issuer as audience); the key stays on this host.

    Example: keyless token get "$CLIENT_ID" --secret - --scope api://orders/.default < secret.txt

    Example: keyless token get "$CLIENT_ID" --cert worker.pem --key worker.key --scope api://orders/.default
    """
    if cert is not None or key is not None:
        if secret is not None:
            usage("give either --secret or --cert/--key, not both")
        if cert is None or key is None:
            usage("--cert needs --key (and --key needs --cert)")
        if basic:
            usage("--basic applies to client secrets only")
        target = opts.target()
        with httpx.Client(verify=trust(target.ca), timeout=30, follow_redirects=False) as http:
            resp = post_assertion_token(http, target, client_id, cert, key, scope,
                                        key_password=_key_password(key_password_env))
    else:
        if key_password_env is not None:
            usage("--key-password-env applies to --key only")
        credential = _secret(secret)
        target = opts.target()
        resp = request_token(target, client_id, credential, scope, basic=basic)
    if resp.status_code != 200:
        fail(problem_line(resp))
    if opts.output is Output.json:
        text = resp.text
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        body = resp.json()
    except ValueError:
        fail("the token endpoint answered 200 without JSON")
    emit(body, opts.output)


def _b64url_json(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = loads_strict(raw)  # NaN, 1e400, duplicate members: what no verifier of ours accepts
    except MalformedJose as exc:
        fail(f"not a JWT: the {what} is not valid JOSE JSON ({exc})")
    except (binascii.Error, ValueError):
        fail(f"not a JWT: the {what} is not base64url-encoded JSON")
    if not isinstance(value, dict):
        fail(f"not a JWT: the {what} is not a JSON object")
    return value


@app.command("decode")
@shared(Output.json)
def decode(
    jwt: Annotated[str, typer.Argument(metavar="TOKEN|-", help="A JWT, or - to read it from stdin.",
                                         show_default=False)],
    *, opts: Shared,
) -> None:
    """Print a JWT's header and claims WITHOUT verifying its signature, issuer or lifetime.

    Only for looking: a resource server must verify every token before trusting a claim.

    Example: keyless token get "$ID" --scope api://orders/.default | jq -r .access_token | keyless token decode -
    """
    value = _read_stdin("token") if jwt == "-" else jwt.strip()
    parts = value.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        fail("not a JWT: expected three dot-separated parts (header.payload.signature)")
    header = _b64url_json(parts[0], "header")
    claims = _b64url_json(parts[1], "payload")
    if opts.output is Output.json:
        emit({"verified": False, "warning": "UNVERIFIED: signature, issuer and lifetime were not checked",
              "header": header, "claims": claims}, opts.output, times=False)  # claims as the token has them
        return
    typer.echo("UNVERIFIED token: signature, issuer and lifetime were not checked")
    typer.echo("header:")
    emit(header, opts.output)
    typer.echo("claims:")
    emit(claims, opts.output, formatters={c: _time_claim for c in TIME_CLAIMS})


def _time_claim(value: Any) -> str:
    try:
        seconds = numeric_date({"t": value}, "t")
    except InvalidClaim as exc:  # a boolean, a string, a time before 1970 or after 2**53 s: no date
        return "" if value is None else f"{str(value)[:40]} (not a valid time: {exc.problem})"
    return f"{value} ({when(seconds)})"
