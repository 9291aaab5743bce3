"""`keyless agent` (run the host agent in the foreground) and `keyless agent status`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from keyless.cli.common import Output, emit, fail, usage, when
from keyless.cli.options import Shared, shared

DEFAULT_STATE = Path("/var/lib/keyless-agent")
DEFAULT_LISTEN = "127.0.0.1:50342"

app = typer.Typer(invoke_without_command=True)  # the callback's docstring is the help, with its example


@app.callback()
@shared(None, data_dir=False, helps={"server": "Keyless server URL (https), to enroll.",
                                     "ca": "CA bundle that signed the server's TLS certificate."})
def agent(
    ctx: typer.Context,
    join_token: Annotated[str | None, typer.Option(
        "--join-token", envvar="KEYLESS_JOIN_TOKEN", help="Single-use token from `keyless host add` (first run).",
        show_envvar=True)] = None,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the host key and certificate live (0700).")
                         ] = DEFAULT_STATE,
    listen: Annotated[str, typer.Option("--listen", help="Loopback HOST:PORT of the IMDS/App Service endpoints; "
                                                         "'none' for no TCP listener.")] = DEFAULT_LISTEN,
    socket_path: Annotated[Path | None, typer.Option("--socket", help="Unix socket path for bound workloads.")
                           ] = None,
    allow_host: Annotated[list[str] | None, typer.Option("--allow-host", help="Extra accepted Host header value.")
                          ] = None,
    rate: Annotated[float, typer.Option("--rate", help="Requests per second per caller (0: no limit).")] = 500.0,
    poll: Annotated[float, typer.Option(
        "--poll", help="Seconds between fetches of the host's identities (and of its removal).")] = 5.0,
    header_timeout: Annotated[float, typer.Option(
        "--header-timeout", envvar="KEYLESS_HEADER_TIMEOUT", help="Seconds a client has to send a request's head.")
    ] = 10.0,
    body_timeout: Annotated[float, typer.Option(
        "--body-timeout", envvar="KEYLESS_BODY_TIMEOUT", help="Seconds a client has to send a request's body.")
    ] = 30.0,
    keep_alive: Annotated[float, typer.Option(
        "--keep-alive", envvar="KEYLESS_KEEP_ALIVE_TIMEOUT", help="Idle seconds before a connection is closed.")
    ] = 5.0,
    max_per_source: Annotated[int, typer.Option(
        "--max-per-source", envvar="KEYLESS_MAX_CONNECTIONS_PER_SOURCE",
        help="Open connections per caller (TCP address, or uid on the socket).")] = 64,
    log_level: Annotated[str, typer.Option(
        "--log-level", help="debug (adds a line per request to the server), info, warning or error.")] = "info",
    *, opts: Shared,
) -> None:
    """Run the agent in the foreground: enroll with --join-token the first time, then serve tokens
    for this host's managed identities. Stop it with Ctrl-C or SIGTERM.

    Example: keyless agent --server https://kl.internal:8443 --ca ca.pem --join-token kjt.… --socket /run/kl.sock
    """
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from keyless.agent.runtime import run
    from keyless.agent.settings import AgentSettings
    from keyless.listen import ListenerLimits

    limits = ListenerLimits(header_timeout=header_timeout, body_timeout=body_timeout,  # refuses bad values
                            keep_alive_timeout=keep_alive, max_per_source=max_per_source)
    settings = AgentSettings(
        server=opts.server, ca_file=str(opts.ca) if opts.ca else None, join_token=join_token, state_dir=state_dir,
        listen=None if listen == "none" else listen, socket=socket_path, allowed_hosts=tuple(allow_host or ()),
        rate=rate, burst=max(1.0, 2 * rate), poll_interval=poll, limits=limits,
    )
    settings.listen_address()  # refuse a non-loopback address before anything else
    from keyless.jsonlog import configure_json

    if log_level not in {"debug", "info", "warning", "error"}:
        usage("--log-level must be debug, info, warning or error")
    configure_json(log_level)
    try:
        import uvloop

        uvloop.run(run(settings))
    except ImportError:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        pass


@app.command("status")
@shared(Output.json, remote=False, data_dir=False)
def status(
    listen: Annotated[str, typer.Option("--listen", help="The agent's HOST:PORT.")] = DEFAULT_LISTEN,
    socket_path: Annotated[Path | None, typer.Option("--socket", help="Ask over this Unix socket instead.")] = None,
    *, opts: Shared,
) -> None:
    """Show the running agent's state: ok, degraded (server unreachable, serving cached tokens) or
    revoked (the host was removed); its host, certificate expiry and cached tokens.

    Example: keyless agent status --socket /run/keyless/agent.sock
    """
    import httpx

    try:
        if socket_path is not None:
            with httpx.Client(transport=httpx.HTTPTransport(uds=os.fspath(socket_path)), timeout=5) as http:
                resp = http.get("http://localhost/agent/status", headers={"Metadata": "true"})
        else:
            with httpx.Client(timeout=5) as http:
                resp = http.get(f"http://{listen}/agent/status", headers={"Metadata": "true"})
    except httpx.HTTPError as exc:
        fail(f"no agent answers at {socket_path or listen}: {type(exc).__name__}")
    if resp.status_code != 200:
        fail(f"the agent answered HTTP {resp.status_code}")
    data = json.loads(resp.content)
    output = opts.output
    if output is Output.table:
        data = {**data, "identities": [f"{i['name']} ({i['kind']})" for i in data.get("identities", [])]}
    emit(data, output, formatters={k: when for k in ("certificate_not_after", "certificate_renew_at", "last_poll",
                                                     "last_token_success", "last_token_failure")})
    if data.get("state") != "ok":
        raise typer.Exit(1)
