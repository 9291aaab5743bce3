"""`keyless federation …`: trust tokens from external issuers (CI, Kubernetes, another cloud or
another Keyless tenant) for an application or a user-assigned identity (`--identity`), with no
credential of ours on the workload."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import typer

from keyless.cli.common import (
    LimitOpt,
    ManagementClient,
    Output,
    emit,
    fail,
    seconds,
    usage,
    when,
)
from keyless.cli.options import Shared, shared

app = typer.Typer(help="Federated identity credentials: add, list, remove, test a token, lint.",
                  no_args_is_help=True)

AppArg = Annotated[str | None, typer.Argument(
    metavar="APP", help="Client id (or identifier URI or unique display name) of the application; "
    "omit it with --identity.", show_default=False)]
IdentityOpt = Annotated[str | None, typer.Option(
    "--identity", metavar="IDENTITY", help="Instead of APP: a managed identity (name, client id, object id or "
    "resource id); federated credentials attach to user-assigned identities only.", show_default=False)]
LIST_COLUMNS = ("name", "issuer", "subject", "audiences", "claims", "replay", "id")


def _usage(message: str) -> NoReturn:
    """A usage mistake: one line and exit 2, as typer answers a missing argument."""
    typer.echo(f"error: {message} (see --help)", err=True)
    raise typer.Exit(2)


def _one_of(app_ref: str | None, identity: str | None) -> None:
    """Exactly one of APP and --identity; checked before anything is asked of the server."""
    if app_ref is None and identity is None:
        _usage("Missing argument 'APP' (or --identity IDENTITY).")
    if app_ref is not None and identity is not None:
        usage("give exactly one of APP or --identity")


def _owner(api: ManagementClient, app_ref: str | None, identity: str | None) -> tuple[str, str, str]:
    """(API path of the owner, its client id, a label) for APP or --identity, exactly one of them."""
    _one_of(app_ref, identity)
    if identity is not None:
        found = api.call("GET", "/identities", params={"ref": identity})[0]
        return f"/identities/{found['client_id']}", found["client_id"], f"identity {found['name']}"
    assert app_ref is not None
    app_found = api.resolve_app(app_ref)
    return f"/applications/{app_found['client_id']}", app_found["client_id"], str(app_found["display_name"])


def _shifted(app_ref: str | None, second: str | None, identity: str | None, what: str) -> tuple[str | None, str]:
    """With --identity, the one positional argument given is the second one (CREDENTIAL, AUDIENCE)."""
    if identity is not None and second is None and app_ref is not None:
        return None, app_ref
    if second is None:
        _usage(f"Missing argument '{what}'.")
    return app_ref, second


def _claims(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            usage(f"--claim {pair!r}: write NAME=VALUE, e.g. repository_owner=acme")
        out[name] = value
    return out


@app.command("add")
@shared(Output.json)
def add(
    name: Annotated[str, typer.Option("--name", help="Name of the credential (unique per application).",
                                      show_default=False)],
    issuer: Annotated[str, typer.Option("--issuer", help="The external issuer's URL (https, no query).",
                                        show_default=False)],
    app_ref: AppArg = None,
    subject: Annotated[str | None, typer.Option("--subject", help="The exact `sub` the tokens carry.",
                                                show_default=False)] = None,
    subject_pattern: Annotated[str | None, typer.Option(
        "--subject-pattern", help="Instead of --subject: a prefix ending in `:` or `/` then `*`, "
        "e.g. repo:acme/api:* (flagged by `lint` when broader than one repository or namespace).",
        show_default=False)] = None,
    audience: Annotated[str, typer.Option("--audience", help="The one `aud` tokens must carry.")]
        = "api://KeylessTokenExchange",
    claim: Annotated[list[str] | None, typer.Option(
        "--claim", help="Extra condition NAME=VALUE the token must satisfy exactly (repeatable).",
        show_default=False)] = None,
    alg: Annotated[list[str] | None, typer.Option(
        "--alg", help="Signing algorithm accepted from this issuer (repeatable; default RS256 and ES256).",
        show_default=False)] = None,
    replay: Annotated[str, typer.Option(
        "--replay", help="reuse: a token may be exchanged several times within its lifetime (what Kubernetes "
        "and unmodified clients need); jti: once per jti; token: once per token.")] = "reuse",
    max_token_lifetime: Annotated[str, typer.Option(
        "--max-token-lifetime", help="Longest external token lifetime (exp - iat) accepted, at most 24h; "
        "over 1h gets a lint warning.",
    )] = "1h",  # noqa: S107
    description: Annotated[str, typer.Option("--description", help="A note for admins.")] = "",
    identity: IdentityOpt = None,
    *, opts: Shared,
) -> None:
    """Trust an external issuer's tokens for one subject as this application's (or identity's) credential.

    Example: keyless federation add orders-api --name github-main
    --issuer https://token.actions.githubusercontent.com --subject repo:acme/api:ref:refs/heads/main

    Example: keyless federation add --identity billing-api --name prod-billing
    --issuer https://oidc.prod-cluster.example --subject system:serviceaccount:prod:billing
    """
    if (subject is None) == (subject_pattern is None):
        usage("give exactly one of --subject or --subject-pattern")
    body: dict[str, Any] = {
        "name": name, "issuer": issuer, "subject": subject if subject is not None else subject_pattern,
        "subject_is_pattern": subject_pattern is not None, "audiences": [audience],
        "claims": _claims(claim or []), "replay": replay,
        "max_token_lifetime": seconds(max_token_lifetime, "--max-token-lifetime"), "description": description,
    }
    if alg:
        body["algorithms"] = alg
    _one_of(app_ref, identity)
    api = opts.client()
    path, _, _ = _owner(api, app_ref, identity)
    record = api.call("POST", f"{path}/federated-credentials", json_body=body)
    emit(record, opts.output, formatters={"created_at": when})


@app.command("list")
@shared(Output.table)
def list_credentials(
    app_ref: AppArg = None,
    identity: IdentityOpt = None,
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List an application's (or a user-assigned identity's) federated credentials.

    Example: keyless federation list orders-api --output json

    Example: keyless federation list --identity billing-api
    """
    _one_of(app_ref, identity)
    api = opts.client()
    path, _, _ = _owner(api, app_ref, identity)
    rows: list[dict[str, Any]] = api.collect(f"{path}/federated-credentials", limit=limit)
    if opts.output is Output.json:
        emit(rows, opts.output)
        return
    for row in rows:
        if row.get("subject_is_pattern"):
            row["subject"] = f"{row['subject']} (pattern)"
    emit(rows, opts.output, columns=LIST_COLUMNS)


@app.command("remove")
@shared(Output.json)
def remove(
    app_ref: AppArg = None,
    credential: Annotated[str | None, typer.Argument(metavar="CREDENTIAL", help="Name or id of the credential.",
                                                     show_default=False)] = None,
    identity: IdentityOpt = None,
    *, opts: Shared,
) -> None:
    """Stop trusting a federated credential at once (within the server's few-second cache).

    Example: keyless federation remove orders-api github-main

    Example: keyless federation remove --identity billing-api prod-billing
    """
    app_ref, credential = _shifted(app_ref, credential, identity, "CREDENTIAL")
    _one_of(app_ref, identity)
    api = opts.client()
    path, client_id, label = _owner(api, app_ref, identity)
    api.call("DELETE", f"{path}/federated-credentials/{quote(credential, safe='')}")
    if opts.output is Output.json:
        emit({"removed": True, "client_id": client_id, "credential": credential}, opts.output)
    else:
        typer.echo(f"removed federated credential {credential} of {label} ({client_id})")


@app.command("test")
@shared(Output.table)
def test(
    token: Annotated[Path, typer.Option("--token", help="File holding the external token ('-' reads stdin).",
                                        show_default=False)],
    app_ref: AppArg = None,
    identity: IdentityOpt = None,
    *, opts: Shared,
) -> None:
    """Explain which federated credential a token matches, or exactly why none does.

    Runs the token endpoint's own checks and consumes nothing; exits 1 when no credential matches.

    Example: keyless federation test orders-api --token /var/run/secrets/tokens/keyless

    Example: keyless federation test --identity billing-api --token token.jwt
    """
    try:
        text = sys.stdin.read() if str(token) == "-" else token.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {token}: {getattr(exc, 'strerror', None) or type(exc).__name__}")
    _one_of(app_ref, identity)
    api = opts.client()
    path, _, _ = _owner(api, app_ref, identity)
    report: dict[str, Any] = api.call("POST", f"{path}/federated-credentials/test", json_body={"token": text.strip()})
    if opts.output is Output.json:
        emit(report, opts.output)
    else:
        _print_report(report)
    if report.get("result") != "match":
        raise typer.Exit(1)


def _print_report(report: dict[str, Any]) -> None:
    claims = report.get("token", {})
    typer.echo(f"result: {report['result']} - {report['explanation']}")
    if report.get("issuer_fetch_error"):
        typer.echo(f"issuer keys: {report['issuer_fetch_error']}")
    if report.get("application_enabled") is False:
        typer.echo("the application is disabled: it cannot sign in whatever the token")
    typer.echo(f"token: iss={claims.get('iss')} sub={claims.get('sub')} aud={claims.get('aud')} "
               f"alg={claims.get('alg')} exp={when(claims.get('exp'))}")
    for row in report.get("credentials", []):
        typer.echo(f"  {row['name']}: {row['result']} (issuer {row['issuer']}, subject {row['subject']}, "
                   f"audience {row['audience']})")


@app.command("lint")
@shared(Output.table)
def lint(
    app_ref: Annotated[str | None, typer.Argument(
        metavar="[APP]", help="Only this application (default: every application and identity of the tenant).",
        show_default=False)] = None,
    identity: IdentityOpt = None,
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """Flag federated credentials broader than one repository or namespace, and other risks.

    Exits 1 when a finding is an error.

    Example: keyless federation lint

    Example: keyless federation lint --identity billing-api
    """
    api = opts.client()
    params: dict[str, str] | None = None
    if app_ref is not None or identity is not None:
        _, client_id, _ = _owner(api, app_ref, identity)
        params = {"identity" if identity is not None else "client_id": client_id}
    findings: list[dict[str, Any]] = api.collect("/federated-credentials/lint", params=params, limit=limit)
    if opts.output is Output.json:
        emit(findings, opts.output)
    elif findings:
        emit(findings, opts.output, columns=("severity", "code", "name", "client_id", "message"))
    else:
        typer.echo("no findings")
    if any(f["severity"] == "error" for f in findings):
        raise typer.Exit(1)


outbound = typer.Typer(help="Outbound identity tokens: audiences an application or managed identity may get a "
                            "Keyless-signed identity token for, to federate with a cloud or another Keyless tenant.",
                       no_args_is_help=True)
app.add_typer(outbound, name="outbound")
AudienceArg = Annotated[str | None, typer.Argument(metavar="AUDIENCE", help="e.g. api://KeylessTokenExchange",
                                                   show_default=False)]
OutboundIdentityOpt = Annotated[str | None, typer.Option(
    "--identity", metavar="IDENTITY", help="Instead of APP: a managed identity, system- or user-assigned (name, "
    "client id, object id or resource id); its host's agent hands the tokens to local workloads.",
    show_default=False)]



@outbound.command("allow")
@shared(Output.table)
def outbound_allow(
    app_ref: AppArg = None,
    audience: AudienceArg = None,
    identity: OutboundIdentityOpt = None,
    *, opts: Shared,
) -> None:
    """Let the application ask for identity tokens with this audience (scope AUDIENCE/.default).

    Example: keyless federation outbound allow orders-api api://AzureADTokenExchange

    Example: keyless federation outbound allow --identity billing-api api://KeylessTokenExchange
    """
    app_ref, audience = _shifted(app_ref, audience, identity, "AUDIENCE")
    _one_of(app_ref, identity)
    api = opts.client()
    path, client_id, label = _owner(api, app_ref, identity)
    allowed = api.call("POST", f"{path}/identity-token-audiences", json_body={"audience": audience})
    _emit_audiences(client_id, label, allowed, opts.output)


@outbound.command("list")
@shared(Output.table)
def outbound_list(
    app_ref: AppArg = None,
    identity: OutboundIdentityOpt = None,
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List the audiences the application may get identity tokens for.

    Example: keyless federation outbound list orders-api

    Example: keyless federation outbound list --identity billing-api
    """
    _one_of(app_ref, identity)
    api = opts.client()
    path, client_id, label = _owner(api, app_ref, identity)
    _emit_audiences(client_id, label, api.collect(f"{path}/identity-token-audiences", limit=limit), opts.output)


@outbound.command("deny")
@shared(Output.table)
def outbound_deny(
    app_ref: AppArg = None,
    audience: AudienceArg = None,
    identity: OutboundIdentityOpt = None,
    *, opts: Shared,
) -> None:
    """Stop issuing identity tokens with this audience to the application.

    Example: keyless federation outbound deny orders-api api://AzureADTokenExchange
    """
    app_ref, audience = _shifted(app_ref, audience, identity, "AUDIENCE")
    _one_of(app_ref, identity)
    api = opts.client()
    path, client_id, label = _owner(api, app_ref, identity)
    api.call("DELETE", f"{path}/identity-token-audiences", params={"audience": audience})
    _emit_audiences(client_id, label, api.collect(f"{path}/identity-token-audiences"), opts.output)


def _emit_audiences(client_id: str, label: str, allowed: list[str], output: Output) -> None:
    if output is Output.json:
        emit({"client_id": client_id, "audiences": allowed}, output)
    elif allowed:
        for audience in allowed:
            typer.echo(audience)
    else:
        typer.echo(f"{label} may get no identity tokens")
