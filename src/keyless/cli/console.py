"""`keyless console`: sign in to the web console (docs/console.md).

Asks the server, with this CLI's management credential, for a one-time sign-in code bound to that
credential's roles (usable once, within 60 seconds), and opens `https://…/console/login#CODE` in a
browser. The code rides in the URL's fragment, which a browser never sends to a server.
"""

from __future__ import annotations

import webbrowser
from typing import Annotated, Any

import typer

from keyless.cli.common import Output, emit
from keyless.cli.options import Shared, shared


@shared(Output.table)
def console(
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the sign-in link; do not open a "
                                             "browser (open it yourself within 60 seconds).")] = False,
    *, opts: Shared,
) -> None:
    """Open the web console, signed in with this CLI's credential (Admin or Reader, as it holds).

    The one-time link is valid for 60 seconds and for one sign-in.

    Example: keyless console --no-browser
    """
    issued: dict[str, Any] = opts.client().call("POST", "/console/login-codes")
    opened = False
    if not no_browser and opts.output is Output.table:
        try:
            opened = webbrowser.open(issued["url"])
        except webbrowser.Error:
            opened = False
    if opts.output is Output.json:
        emit({"url": issued["url"], "expires_at": issued["expires_at"]}, opts.output)
        return
    if opened:
        typer.echo("Opened the web console in your browser (the sign-in link works once, for 60 seconds).")
    else:
        typer.echo("Open this link within 60 seconds to sign in (it works once):")
        typer.echo(issued["url"])
