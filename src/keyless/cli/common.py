"""What every CLI command shares: where the server is, how to trust it, who we are, how to print.

The CLI is an application of its own: it gets an access token for the management API from the
server with its admin credential (made by `keyless init`) and calls the API over HTTPS, so the same
commands work against a remote server. Only `init`, `serve` and `up` touch the data directory's
keys and database directly.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import orjson
import typer

from keyless import text
from keyless.cli.session import TOKEN_FILE, TokenCacheFile, fetch_token, refusal_line
from keyless.client.errors import ClientAuthenticationError, OAuthError
from keyless.errors import KeylessError


class Output(StrEnum):
    table = "table"
    json = "json"


DataDirOpt = Annotated[
    Path, typer.Option("--data-dir", envvar="KEYLESS_DATA_DIR", help="Keyless data directory.", show_default=True)
]
ServerOpt = Annotated[
    str | None, typer.Option("--server", envvar="KEYLESS_SERVER", help="Server URL (default: from the data dir).")
]
CaOpt = Annotated[
    Path | None, typer.Option("--ca", envvar="KEYLESS_CA", help="CA bundle to trust (default: the data dir's CA).")
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table for people, json for scripts.")]
LimitOpt = Annotated[int | None, typer.Option(
    "--limit", min=1, help="At most this many rows (default: all of them, fetched page by page).")]
SERVER_PAGE = 1000  # the management API's largest page (keyless.paging.MAX_LIMIT)
DEFAULT_DATA_DIR = Path(".keyless")


class CliError(KeylessError):
    """Printed as one line on stderr; the command exits 1."""


class UsageError(CliError):
    """A usage mistake or a malformed value (`--expires-in banana`): one line, exit 2, as the option
    parser answers an unknown option (docs/cli.md)."""


def fail(message: str) -> NoReturn:
    raise CliError(message)


def usage(message: str) -> NoReturn:
    raise UsageError(message)


@dataclass
class Target:
    """A resolved server: URL, CA bundle, tenant, and the CLI's credential."""

    server: str
    ca: str | bool
    tenant: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_certificate: Path | None = None  # certificate credential: the PEM certificate …
    client_key: Path | None = None  # … and its private key, which never leaves this host
    token_cache: Path | None = None  # where the management token is kept (cli/session.py)


def resolve(data_dir: Path, server: str | None, ca: Path | None) -> Target:
    config: dict[str, Any] = {}
    config_file = data_dir / "config.json"
    if config_file.exists():
        config = json.loads(config_file.read_text())
    url = server or config.get("server_url")
    if not url:
        fail(f"no server given: pass --server or set KEYLESS_SERVER (no data directory at {data_dir})")
    if not url.startswith("https://"):
        fail("the server URL must start with https://")
    ca_path: str | bool = True
    if ca is not None:
        ca_path = str(ca)
    elif (data_dir / "ca" / "ca.pem").exists():
        ca_path = str(data_dir / "ca" / "ca.pem")
    tenant = os.environ.get("KEYLESS_TENANT") or config.get("tenant_id") or "default"
    target = Target(server=url.rstrip("/"), ca=ca_path, tenant=tenant)
    cred_file = data_dir / "cli" / "credential.json"
    env_id = os.environ.get("KEYLESS_ADMIN_CLIENT_ID")
    if env_id and os.environ.get("KEYLESS_ADMIN_CLIENT_SECRET"):
        target.client_id = env_id
        target.client_secret = os.environ["KEYLESS_ADMIN_CLIENT_SECRET"]
    elif env_id and os.environ.get("KEYLESS_ADMIN_CLIENT_CERTIFICATE") and os.environ.get("KEYLESS_ADMIN_CLIENT_KEY"):
        target.client_id = env_id
        target.client_certificate = Path(os.environ["KEYLESS_ADMIN_CLIENT_CERTIFICATE"])
        target.client_key = Path(os.environ["KEYLESS_ADMIN_CLIENT_KEY"])
    elif cred_file.exists():
        _read_credential(target, cred_file)
    if cred_file.parent.is_dir():
        target.token_cache = cred_file.parent / TOKEN_FILE
    return target


def _read_credential(target: Target, cred_file: Path) -> None:
    """`cli/credential.json`: a certificate credential (paths relative to `cli/`), or the client
    secret that data directories made before certificate credentials hold."""
    try:
        cred = json.loads(cred_file.read_text())
        target.client_id = str(cred["client_id"])
    except (OSError, ValueError, KeyError, TypeError):
        fail(f"{cred_file} is not a Keyless CLI credential")
    if cred.get("certificate") and cred.get("private_key"):
        target.client_certificate = cred_file.parent / str(cred["certificate"])
        target.client_key = cred_file.parent / str(cred["private_key"])
    elif cred.get("client_secret"):
        target.client_secret = str(cred["client_secret"])
    else:
        fail(f"{cred_file} holds neither a certificate nor a client secret")
    target.tenant = cred.get("tenant", target.tenant)


def trust(ca: str | bool) -> ssl.SSLContext | bool:
    """httpx wants an SSLContext for a private CA bundle (a path string is deprecated)."""
    if isinstance(ca, str):
        try:
            return ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            fail(f"cannot load the CA bundle {ca}: {exc.strerror or type(exc).__name__}")
    return ca


def send(http: httpx.Client, target: Target, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One HTTP exchange; a transport failure becomes one CLI error line."""
    try:
        return http.request(method, url, **kwargs)
    except httpx.ConnectError as exc:
        fail(f"cannot reach {target.server}: {exc}")
    except httpx.HTTPError as exc:
        fail(f"request to {target.server} failed: {type(exc).__name__}")


def problem_line(resp: httpx.Response) -> str:
    """One line for an error answer, its texts shown escaped like table cells (keyless.text)."""
    return text.terminal(_problem_line(resp))


def _problem_line(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"server answered {resp.status_code}"
    if isinstance(body, dict):
        if "code" in body:
            return f"{body.get('detail', body.get('title', 'error'))} ({body['code']})"
        if "error" in body:
            code, description = str(body["error"]), str(body.get("error_description") or body["error"])
            return description if code in description else f"{description} ({code})"
    return f"server answered {resp.status_code}"


def _credential_material(target: Target) -> bytes:
    """What names the CLI's credential for its token cache: the certificate file, or the secret."""
    if target.client_certificate is not None and target.client_key is not None:
        try:
            return b"certificate:" + target.client_certificate.read_bytes()
        except OSError:
            return b"certificate:" + os.fsencode(target.client_certificate)
    return b"secret:" + (target.client_secret or "").encode()


class ManagementClient:
    """Calls `/{tenant}/manage/v1/…` with a token obtained from the same server."""

    def __init__(self, target: Target, http: httpx.Client | None = None) -> None:
        has_certificate = target.client_certificate is not None and target.client_key is not None
        if not target.client_id or not (target.client_secret or has_certificate):
            fail("no CLI credential: run `keyless init`, pass --data-dir, or set KEYLESS_ADMIN_CLIENT_ID with "
                 "KEYLESS_ADMIN_CLIENT_SECRET or KEYLESS_ADMIN_CLIENT_CERTIFICATE/KEYLESS_ADMIN_CLIENT_KEY")
        self.target = target
        self.http = http or httpx.Client(verify=trust(target.ca), timeout=30, follow_redirects=False)
        self._token: str | None = None
        self._from_cache = False
        self._cache = (TokenCacheFile(target.token_cache, target.server, target.tenant, target.client_id,
                                      _credential_material(target))
                       if target.token_cache is not None else None)

    def token(self) -> str:
        """The management token: the one on disk while it has time left, else a new one (cli/session.py)."""
        if self._token is None:
            self._token = self._cache.read(time.time()) if self._cache is not None else None
            self._from_cache = self._token is not None
            if self._token is None:
                self._token = self._sign_in()
        return self._token

    def forget_token(self) -> None:
        """Drop the management token, in memory and on disk, so the next call signs in afresh (e.g.
        after retiring the signing key that signed it; a 401 on a cached token does the same once)."""
        self._token, self._from_cache = None, False
        if self._cache is not None:
            self._cache.drop()

    def _sign_in(self) -> str:
        target = self.target
        certificate = target.client_certificate if target.client_key is not None else None
        try:
            token, expires_on = fetch_token(self.http, target.server, target.tenant, target.client_id or "",
                                            secret=target.client_secret, certificate=certificate,
                                            key=target.client_key)
        except OAuthError as exc:
            fail("could not authenticate the CLI: " + text.terminal(refusal_line(exc)))
        except ClientAuthenticationError as exc:  # unreachable, or an answer that is no token response
            fail(text.terminal(str(exc)))
        except KeylessError as exc:  # the credential files cannot be used
            fail(f"cannot use the certificate credential: {exc}")
        if self._cache is not None:
            self._cache.write(token, expires_on)
        return token

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return send(self.http, self.target, method, url, **kwargs)

    def close(self) -> None:
        self.http.close()

    def _authorized(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                    **kwargs: Any) -> httpx.Response:
        """One request with the management token. The token on disk may no longer be accepted (a
        retired key: 401) or predate a role the CLI's application was given since (403): then the CLI
        signs in again, once, and asks again."""
        def send() -> httpx.Response:
            return self._send(method, url, headers={**(headers or {}), "Authorization": f"Bearer {self.token()}"},
                              **kwargs)

        resp = send()
        if resp.status_code in (401, 403) and self._from_cache and self._cache is not None:
            self._cache.drop()
            self._token, self._from_cache = self._sign_in(), False
            resp = send()
        return resp

    def url_of(self, path: str, params: dict[str, Any] | None) -> tuple[str, list[tuple[str, Any]]]:
        """The URL of a management path and its query: a query written into `path` is kept and merged
        with `params` (httpx replaces a URL's query with `params` when both are given, which silently
        dropped filters written as `/grants?client_id=…`). Every value of a repeated key is kept, in
        order (`?kind=secret&kind=certificate`); a key given in `params` replaces the path's (a list
        value repeats the key)."""
        url = httpx.URL(f"{self.target.server}/{self.target.tenant}/manage/v1{path}")
        given = {k: v for k, v in (params or {}).items() if v is not None}
        query = [(k, v) for k, v in url.params.multi_items() if k not in given]
        for key, value in given.items():
            query += [(key, v) for v in value] if isinstance(value, list | tuple) else [(key, value)]
        return str(url.copy_with(query=None)), query

    def call(self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
        url, query = self.url_of(path, params)
        resp = self._authorized(method, url, json=json_body, params=query, headers=headers)
        if resp.status_code >= 400:
            fail(problem_line(resp))
        # orjson: a posture report is ~30 MB of JSON, and the standard parser takes three times as long.
        return orjson.loads(resp.content) if resp.content else None

    def collect(self, path: str, *, params: dict[str, Any] | None = None, limit: int | None = None) -> list[Any]:
        """The items of a paged list (docs/api.md, "Paging"): every one, following each answer's
        `Link: <…>; rel="next"`, or the first `limit`. So JSON output stays the one array it always was.
        A next link must stay on this server (a path), so the token is never sent anywhere else."""
        url, first = self.url_of(path, params)
        query: list[tuple[str, Any]] | None = [*(q for q in first if q[0] != "limit"),
                                                ("limit", min(limit or SERVER_PAGE, SERVER_PAGE))]
        items: list[Any] = []
        seen: set[str] = set()
        while True:
            resp = self.get_page(url, query)
            page = resp.json()
            if not isinstance(page, list):
                fail("the server answered a list request with something other than a list")
            items += page
            following = self.next_page(resp, seen)
            if following is None or (limit is not None and len(items) >= limit):
                return items[:limit]
            url, query = following, None

    def get_page(self, url: str, query: list[tuple[str, Any]] | None) -> httpx.Response:
        resp = self._authorized("GET", url, params=query)
        if resp.status_code >= 400:
            fail(problem_line(resp))
        return resp

    def next_page(self, resp: httpx.Response, seen: set[str]) -> str | None:
        """The URL of the answer's `Link: <…>; rel="next"` (None: the last page). It must be a path not
        followed before (`seen`), so the token is never sent to another server and a loop ends."""
        following = resp.links.get("next", {}).get("url")
        if following and (not following.startswith("/") or following.startswith("//") or following in seen):
            fail("the server's next-page link is not a new path on this server")
        seen.add(following or "")
        return self.target.server + following if following else None

    def resolve_app(self, ref: str) -> dict[str, Any]:
        found = self.call("GET", "/applications", params={"ref": ref})
        return dict(found[0])


def client(data_dir: Path, server: str | None, ca: Path | None) -> ManagementClient:
    return ManagementClient(resolve(data_dir, server, ca))


def emit(data: Any, output: Output, columns: Sequence[str] | None = None,
         formatters: Mapping[str, Callable[[Any], str]] | None = None, *, times: bool = True) -> None:
    """JSON for scripts (instants in ISO 8601 UTC unless `times` is off); a table (lists) or
    key/value lines (objects) for people."""
    if output is Output.json:
        from keyless.cli.times import iso_times

        sys.stdout.write(json.dumps(iso_times(data) if times else data, indent=2, default=str) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    # Piped output keeps whole ids on one line instead of wrapping at 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 250)
    fmt = formatters or {}

    def cell(key: str, row: Mapping[str, Any]) -> str:
        return safe_cell(fmt.get(key, _cell)(row.get(key)))

    if isinstance(data, list):
        cols = list(columns or (data[0].keys() if data else []))
        table = Table(*[safe_cell(c) for c in cols])
        for row in data:
            table.add_row(*[cell(c, row) for c in cols])
        console.print(table)
        return
    if isinstance(data, dict):
        for key in columns or data.keys():
            console.print(f"[bold]{safe_cell(key)}[/bold]: {cell(key, data)}", highlight=False)
        return
    console.print(safe_cell(str(data)))


def safe_cell(value: str) -> str:
    """The one place a table cell or a key/value line is made safe for a terminal: control and format
    characters shown escaped (`\\x1b`, never sent raw, so a stored value can neither forge a row nor
    drive the terminal) and rich's markup brackets escaped (a value is shown, never interpreted)."""
    from rich.markup import escape

    return escape(text.terminal(value))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def seconds(value: str, option: str) -> int:
    """A duration option (`30d`, `12h`, …) in seconds, or one error line naming the option."""
    from keyless.directory.errors import Invalid
    from keyless.directory.validation import duration

    try:
        return duration(value)
    except Invalid as exc:
        usage(f"{option}: {exc.message}")


def when(value: Any) -> str:
    import datetime as dt

    if value is None:
        return ""
    return dt.datetime.fromtimestamp(float(value), dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@contextmanager
def errors_as_lines() -> Iterator[None]:
    try:
        yield
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if isinstance(exc, UsageError) else 1) from None
