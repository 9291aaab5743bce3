"""Entry point of the `keyless` command."""

from __future__ import annotations

import sys

import typer

from keyless.cli import apps, grants, keys, logs, secrets, server_cmds, tenant, tokens, up
from keyless.cli.common import CliError
from keyless.errors import KeylessError

app = typer.Typer(
    name="keyless",
    help="Keyless: workload identity without shared secrets. Run `keyless up` to try it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("init")(server_cmds.init)
app.command("serve")(server_cmds.serve)
app.command("up")(up.up)
app.add_typer(server_cmds.db_app, name="db")
app.add_typer(apps.app, name="app")
app.add_typer(secrets.app, name="secret")
app.command("grant")(grants.grant)
app.add_typer(grants.app, name="grants")
app.add_typer(tokens.app, name="token")
app.add_typer(logs.app, name="log")
app.add_typer(keys.app, name="key")
app.add_typer(tenant.app, name="tenant")


def main() -> None:
    try:
        app()
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeylessError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
