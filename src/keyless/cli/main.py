"""Entry point of the `keyless` command.

Commands are registered lazily: a run imports only the module of the command it runs (a command's
module pulls in what it needs: httpx, the SDK, cryptography, …), and builds only that command; a run
without a known command (`keyless`, `keyless --help`, shell completion, a misspelt command) registers
all of them, so `keyless --help` lists every command with its help text as before (docs/cli.md)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from keyless.cli.common import CliError, UsageError
from keyless.cli.options import RootCaOpt, RootDataDirOpt, RootOutputOpt, RootServerOpt
from keyless.errors import KeylessError

_app = typer.Typer(
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


@_app.callback()
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


# Every command in the order `keyless --help` lists them: (name, module under keyless.cli, attribute,
# whether it is a group of subcommands). A module is imported only when its command is registered.
COMMANDS: tuple[tuple[str, str, str, bool], ...] = (
    ("init", "server_cmds", "init", False),
    ("serve", "server_cmds", "serve", False),
    ("up", "up", "up", False),
    ("login", "login", "login", False),
    ("logout", "login", "logout", False),
    ("console", "console", "console", False),
    ("db", "server_cmds", "db_app", True),
    ("app", "apps", "app", True),
    ("secret", "secrets", "app", True),
    ("cert", "certs", "app", True),
    ("ca", "ca", "app", True),
    ("grant", "grants", "grant", False),
    ("scan", "scan", "scan", False),
    ("grants", "grants", "app", True),
    ("token", "tokens", "app", True),
    ("log", "logs", "app", True),
    ("posture", "posture", "posture", False),
    ("key", "keys", "app", True),
    ("tenant", "tenant", "app", True),
    ("vault", "vault", "app", True),
    ("host", "hosts", "app", True),
    ("identity", "identities", "app", True),
    ("agent", "agent", "app", True),
    ("federation", "federation", "app", True),
    ("webhook", "webhooks", "app", True),
    ("policy", "policies", "app", True),
    ("credentials", "credentials", "app", True),
)
_BY_NAME = {c[0]: c for c in COMMANDS}
# The root options that take a value (`keyless --data-dir DIR app list`): skipped to find the command.
_ROOT_VALUED = frozenset({"--data-dir", "--server", "--ca", "--output", "-o"})
_registered: set[str] = set()


def _register(name: str) -> None:
    if name in _registered:
        return
    _, module_name, attribute, group = _BY_NAME[name]
    target: Any = getattr(importlib.import_module(f"keyless.cli.{module_name}"), attribute)
    if group:
        _app.add_typer(target, name=name)
    else:
        _app.command(name)(target)
    _registered.add(name)


def register_all() -> typer.Typer:
    """The app with every command (what `keyless --help` lists, and what tests drive in-process)."""
    missing = [name for name, *_ in COMMANDS if name not in _registered]
    if missing:  # registered in COMMANDS' order, whatever ran before
        _app.registered_commands.clear()
        _app.registered_groups.clear()
        _registered.clear()
        for name in (c[0] for c in COMMANDS):
            _register(name)
    return _app


def command_of(args: Sequence[str]) -> str | None:
    """The command a command line runs, or None when it names none that is known (then every command is
    registered and typer answers: the root help, a completion, or "No such command")."""
    values = iter(args)
    for arg in values:
        if arg in _ROOT_VALUED:
            next(values, None)
        elif not arg.startswith("-"):
            return arg if arg in _BY_NAME else None
        elif arg.split("=", 1)[0] not in _ROOT_VALUED:
            return None  # --help, --version, --install-completion, or an unknown option
    return None


def __getattr__(name: str) -> Any:
    """`keyless.cli.main.app` is the app with every command (tests drive it in-process)."""
    if name == "app":
        return register_all()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Run a command; every failure is one `error: …` line on stderr and a non-zero exit
    (1 for a failed operation, 2 for a usage mistake)."""
    command = None if "_KEYLESS_COMPLETE" in os.environ else command_of(sys.argv[1:])
    if command is None:
        register_all()
    else:
        _register(command)
    try:
        result = _app(standalone_mode=False, prog_name="keyless")
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
