"""Entry point of the `keyless` command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer.exceptions import TyperException

from keyless.cli import (
    apps,
    ca,
    certs,
    console,
    credentials,
    federation,
    grants,
    keys,
    login,
    logs,
    policies,
    posture,
    scan,
    secrets,
    server_cmds,
    tenant,
    tokens,
    up,
    vault,
    webhooks,
)
from keyless.cli.agent import app as agent_app
from keyless.cli.common import CliError, UsageError
from keyless.cli.hosts import app as host_app
from keyless.cli.identities import app as identity_app
from keyless.cli.options import RootCaOpt, RootDataDirOpt, RootOutputOpt, RootServerOpt
from keyless.errors import KeylessError

app = typer.Typer(
    name="keyless",
    help="Keyless: workload identity without shared secrets. Run `keyless up` to try it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"keyless {version('keyless')}")
        except PackageNotFoundError:  # a source tree on sys.path without installed metadata
            typer.echo("keyless (version unknown: not installed)")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    data_dir: RootDataDirOpt = None,
    server: RootServerOpt = None,
    ca: RootCaOpt = None,
    output: RootOutputOpt = None,
) -> None:
    """Keyless: workload identity without shared secrets. Run `keyless up` to try it.

    The shared options may come before the command (`keyless --data-dir DIR app list`) or after it;
    each command reads them through keyless.cli.options.
    """


app.command("init")(server_cmds.init)
app.command("serve")(server_cmds.serve)
app.command("up")(up.up)
app.command("login")(login.login)
app.command("logout")(login.logout)
app.command("console")(console.console)
app.add_typer(server_cmds.db_app, name="db")
app.add_typer(apps.app, name="app")
app.add_typer(secrets.app, name="secret")
app.add_typer(certs.app, name="cert")
app.add_typer(ca.app, name="ca")
app.command("grant")(grants.grant)
app.command("scan")(scan.scan)
app.add_typer(grants.app, name="grants")
app.add_typer(tokens.app, name="token")
app.add_typer(logs.app, name="log")
app.command("posture")(posture.posture)
app.add_typer(keys.app, name="key")
app.add_typer(tenant.app, name="tenant")
app.add_typer(vault.app, name="vault")
app.add_typer(host_app, name="host")
app.add_typer(identity_app, name="identity")
app.add_typer(agent_app, name="agent")
app.add_typer(federation.app, name="federation")
app.add_typer(webhooks.app, name="webhook")
app.add_typer(policies.app, name="policy")
app.add_typer(credentials.app, name="credentials")


def main() -> None:
    """Run a command; every failure is one `error: …` line on stderr and a non-zero exit
    (1 for a failed operation, 2 for a usage mistake)."""
    try:
        result = app(standalone_mode=False, prog_name="keyless")
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(130)
    except TyperException as exc:  # usage mistakes: missing argument, bad choice, unknown option
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"error: {message} (see --help)", err=True)
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except UsageError as exc:  # a malformed value found after parsing (`--expires-in banana`)
        typer.echo(f"error: {exc} (see --help)", err=True)
        sys.exit(2)
    except (CliError, KeylessError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
