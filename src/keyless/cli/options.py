"""The options every command shares — where the data is, which server, which CA, how to print — declared
once (issue 12 item 6).

They are accepted in both places docs/cli.md promises: before the command, on the root callback
(`keyless --data-dir DIR app list`), and after it, where every documented invocation puts them
(`keyless app list --data-dir DIR -o json`). A command asks for them with `@shared(...)` and one
keyword-only parameter `opts: Shared`; the decorator adds the options to the signature Typer reads and
hands the command one resolved `Shared`. Precedence, most specific first: the option after the
command, the option before it, the environment variable, the default.
"""

from __future__ import annotations

import copy
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from keyless.cli.common import (
    DEFAULT_DATA_DIR,
    CaOpt,
    DataDirOpt,
    ManagementClient,
    Output,
    OutputOpt,
    ServerOpt,
    Target,
    client,
    resolve,
    usage,
)

#: The root callback's spelling of the shared options (no environment variables there: the command's
#: own declaration reads them, so an explicit option before the command still beats the environment).
RootDataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="Keyless data directory (also accepted after the command).", show_default=False)]
RootServerOpt = Annotated[str | None, typer.Option(
    "--server", help="Server URL (also accepted after the command).", show_default=False)]
RootCaOpt = Annotated[Path | None, typer.Option(
    "--ca", help="CA bundle to trust (also accepted after the command).", show_default=False)]
RootOutputOpt = Annotated[Output | None, typer.Option(
    "--output", "-o", help="table or json (also accepted after the command; its default is per command).",
    show_default=False)]

_NAMES = ("data_dir", "server", "ca", "output")


@dataclass(frozen=True)
class Shared:
    """The resolved shared options of one command run."""

    data_dir: Path = DEFAULT_DATA_DIR
    server: str | None = None
    ca: Path | None = None
    output: Output = Output.json

    def target(self) -> Target:
        """The server, its trust anchor and the CLI's credential (keyless.cli.common.resolve)."""
        return resolve(self.data_dir, self.server, self.ca)

    def client(self) -> ManagementClient:
        """A management API client for the resolved server."""
        return client(self.data_dir, self.server, self.ca)


_CONTEXT = "shared_options_context"  # the click context Typer hands the wrapper; never the command's


def _explicit(ctx: Any, name: str) -> bool:
    """Whether `name` was typed on this command line (not taken from the environment or a default);
    `ctx` is a click context (Typer's root context is of its vendored click's own class)."""
    source = ctx.get_parameter_source(name) if name in ctx.params else None
    return source is not None and source.name == "COMMANDLINE"


def _resolve(ctx: typer.Context, given: dict[str, Any], default_output: Output | None) -> Shared:
    root = ctx.find_root()
    values: dict[str, Any] = {}
    for name in _NAMES:
        if name in given and _explicit(ctx, name):
            values[name] = given[name]
        elif root is not ctx and _explicit(root, name) and root.params[name] is not None:
            if name not in given:  # e.g. `keyless --server URL init`: say so rather than ignore it
                usage(f"`{ctx.command_path.removeprefix(root.info_name or '').strip()}` does not take "
                      f"--{name.replace('_', '-')}")
            values[name] = root.params[name]
        elif name in given:
            values[name] = given[name]
    if values.get("output") is None:
        values["output"] = default_output or Output.json
    return Shared(**values)


def _helped(annotation: Any, help_text: str | None) -> Any:
    """`annotation` (a shared option's) with its help replaced: same flag names, same environment
    variable, a sentence that fits the command."""
    if help_text is None:
        return annotation
    base, info = typing.get_args(annotation)
    told = copy.copy(info)
    told.help = help_text
    return Annotated[base, told]


def shared(output: Output | None = Output.json, *, remote: bool = True, data_dir: bool = True,
           helps: Mapping[str, str] | None = None) -> Callable[[Callable[..., Any]], Any]:
    """Give a command the shared options and call it with `opts=Shared(...)`.

    `output` is the command's default for `-o` (None: the command prints no structured result and
    takes no `-o`); `remote=False` for commands that only touch the data directory (no `--server`,
    no `--ca`); `data_dir=False` for commands that read no data directory either (`agent`, `agent
    status`); `helps` rewords an option's help for the command (`keyless agent`'s `--server` is the
    server it enrolls with, not one from a data directory). The options come after the command's own,
    as `--help` has always listed them. A command that takes a `typer.Context` itself (a group's
    callback) gets the same context.
    """
    told = dict(helps or {})
    extra = [inspect.Parameter("data_dir", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_DATA_DIR,
                               annotation=_helped(DataDirOpt, told.get("data_dir")))] if data_dir else []
    if remote:
        extra += [inspect.Parameter("server", inspect.Parameter.KEYWORD_ONLY, default=None,
                                    annotation=_helped(ServerOpt, told.get("server"))),
                  inspect.Parameter("ca", inspect.Parameter.KEYWORD_ONLY, default=None,
                                    annotation=_helped(CaOpt, told.get("ca")))]
    if output is not None:
        extra.append(inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=output,
                                       annotation=_helped(OutputOpt, told.get("output"))))

    def decorate(func: Callable[..., Any]) -> Any:
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "opts"]
        if len(own) == len(signature.parameters) or any(p.name in _NAMES for p in own):
            raise TypeError(f"{func.__name__}: @shared needs one `opts: Shared` parameter and no option named "
                            f"{', '.join(_NAMES)}")
        context = next((p.name for p in own if p.annotation is typer.Context), None)
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
                  else p for p in own] + extra
        if context is None:
            params.append(inspect.Parameter(_CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            ctx = kwargs[context] if context is not None else kwargs.pop(_CONTEXT)
            given = {name: kwargs.pop(name) for name in _NAMES if name in kwargs}
            return func(**kwargs, opts=_resolve(ctx, given, output))

        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params} | {"return": signature.return_annotation}
        return command

    return decorate
