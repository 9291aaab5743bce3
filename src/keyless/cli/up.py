"""`keyless up`: the one command that shows Keyless working.

Initialises a data directory if needed, serves, registers a demo API and a demo worker through the
management API (like any admin would), fetches a token for the worker, verifies it against the
published JWKS, has the worker read a secret from the default vault over the Key Vault API, and
prints what to try next. Runs in the foreground until interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keyless.cli.common import ManagementClient, resolve
from keyless.cli.options import Shared, shared
from keyless.cli.server_cmds import config_port
from keyless.cli.token_requests import post_token

if TYPE_CHECKING:
    from keyless.server.settings import ServerSettings

DEMO_API = "api://orders"
DEMO_ROLE = "Orders.Read"
DEMO_FILE = "demo.json"
SECRET_FILE = "demo.secret"  # noqa: S105 - a file name
VAULT = "default"
VAULT_SECRET = "orders-db"  # noqa: S105 - a secret's name


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _demo(api: ManagementClient, data_dir: Path) -> tuple[dict[str, Any], str]:
    """Create (once) the demo resource and worker; return the worker and its secret (kept 0600)."""
    demo_path, secret_path = data_dir / DEMO_FILE, data_dir / SECRET_FILE
    if demo_path.exists() and secret_path.exists():
        return json.loads(demo_path.read_text()), secret_path.read_text()
    apps = {a["display_name"]: a for a in api.collect("/applications")}
    if "orders-api" not in apps:
        api.call("POST", "/applications", json_body={"display_name": "orders-api", "identifier_uri": DEMO_API,
                                                       "roles": [DEMO_ROLE, "Orders.Write"]})
    worker = api.call("POST", "/applications", json_body={"display_name": "orders-worker"})
    secret = api.call("POST", f"/applications/{worker['client_id']}/secrets", json_body={"display_name": "demo"})
    api.call("POST", "/grants", json_body={"client_id": worker["client_id"], "resource": DEMO_API,
                                           "role": DEMO_ROLE})
    demo = {"client_id": worker["client_id"], "resource": DEMO_API}
    _write_private(secret_path, secret["secret"])
    demo_path.write_text(json.dumps(demo, indent=2))
    return demo, secret["secret"]


def _vault_demo(api: ManagementClient, demo: dict[str, Any], demo_secret: str, resource: str,
                vault_port: int) -> str:
    """The default vault with one secret the demo worker may read, read by the worker exactly as
    `azure-keyvault-secrets` would: token for the vault resource, GET at the vault's URL root."""
    if VAULT not in {v["name"] for v in api.collect("/vaults")}:
        api.call("POST", "/vaults", json_body={"name": VAULT})
    if VAULT_SECRET not in {s["name"] for s in api.call("GET", f"/vaults/{VAULT}/secrets")["items"]}:
        api.call("PUT", f"/vaults/{VAULT}/secrets/{VAULT_SECRET}", json_body={"value": secrets.token_urlsafe(24),
                                                                               "content_type": "text/plain"})
    api.call("POST", f"/vaults/{VAULT}/grants", json_body={"principal": demo["client_id"], "roles": ["Secrets.Get"],
                                                          "secret": VAULT_SECRET})
    resp = post_token(api.http, api.target, demo["client_id"], demo_secret, f"{resource}/.default")
    resp.raise_for_status()
    url = f"https://127.0.0.1:{vault_port}"
    read = api.http.get(f"{url}/secrets/{VAULT_SECRET}/?api-version=7.6",
                        headers={"Authorization": f"Bearer {resp.json()['access_token']}"})
    if read.status_code != 200 or not read.json().get("value"):
        raise RuntimeError(f"the demo worker could not read the demo secret ({read.status_code})")
    return url


# The repository's examples (a protected API and a worker that calls it), present in a source checkout —
# where `./scripts/run` runs this command — and absent from an installed package.
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_examples(demo: dict[str, Any], demo_secret: str, tenant: dict[str, Any], server: str, ca: Path,
                  started: list[subprocess.Popen[bytes]]) -> str:
    """Start examples/orders_api.py (it validates Keyless tokens) and run examples/worker.py against it
    as the demo worker; the API keeps running with `keyless up` (its process goes into `started`)."""
    import time

    import httpx

    if not (EXAMPLES / "orders_api.py").exists():
        return "  (examples/ is not here: run ./scripts/run from a source checkout to see the example API)"
    port = _free_port()
    env = {**os.environ, "KEYLESS_ISSUER": tenant["issuer"], "KEYLESS_CA": str(ca), "KEYLESS_AUDIENCE": DEMO_API,
           "KEYLESS_ALGORITHMS": tenant["signing_alg"]}
    api = subprocess.Popen([sys.executable, str(EXAMPLES / "orders_api.py"), "--port", str(port)], env=env,  # noqa: S603 - our interpreter and our file
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(api)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:  # up once it answers at all (GET /orders without a token: 401)
        try:
            httpx.get(f"{url}/orders", timeout=2)
            break
        except httpx.TransportError:
            if api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("examples/orders_api.py did not start") from None
            time.sleep(0.1)
    worker_env = {**os.environ, "KEYLESS_CLIENT_ID": demo["client_id"], "KEYLESS_CLIENT_SECRET": demo_secret,
                  "KEYLESS_TENANT": tenant["id"], "KEYLESS_AUTHORITY": server, "KEYLESS_CA": str(ca),
                  "ORDERS_URL": url}
    done = subprocess.run([sys.executable, str(EXAMPLES / "worker.py")], env=worker_env,  # noqa: S603 - as above
                          capture_output=True,
                          text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"examples/worker.py failed: {done.stderr.strip()}")
    answer = json.dumps(json.loads(done.stdout), separators=(",", ":"))
    return f"  examples/worker.py called examples/orders_api.py ({url}, checks tokens with keyless.verify): {answer}"


def _program() -> str:
    """How to call this CLI again: `keyless` when that is on PATH, else the path we were run by."""
    here = Path(sys.argv[0]).resolve()
    found = shutil.which("keyless")
    if found and Path(found).resolve() == here:
        return "keyless"
    return shlex.quote(os.path.relpath(here)) if here.name == "keyless" else "keyless"


def _show(data_dir: Path, port: int, settings: ServerSettings, started: list[subprocess.Popen[bytes]]) -> None:
    target = resolve(data_dir, f"https://127.0.0.1:{port}", None)
    with contextlib.closing(ManagementClient(target)) as api:
        _show_with(api, data_dir, settings, started)


def _show_with(api: ManagementClient, data_dir: Path, settings: ServerSettings,
               started: list[subprocess.Popen[bytes]]) -> None:
    """The demo through `api`, whose connections are closed afterwards: an idle pooled connection
    to our own port would otherwise hold the server's shutdown."""
    from keyless.verify import TokenValidator

    target = api.target
    demo, demo_secret = _demo(api, data_dir)
    resp = post_token(api.http, api.target, demo["client_id"], demo_secret, f"{DEMO_API}/.default")
    resp.raise_for_status()
    token = resp.json()["access_token"]
    tenant = api.call("GET", "/tenant")
    validator = TokenValidator(issuer=tenant["issuer"], audience=DEMO_API, algorithms=[tenant["signing_alg"]],
                               ca=str(target.ca))
    claims = validator.validate(token).claims
    vault_url = _vault_demo(api, demo, demo_secret, settings.vault_resource(), settings.vault_port)
    examples = _run_examples(demo, demo_secret, tenant, target.server, Path(str(target.ca)).resolve(), started)
    ca = Path(str(target.ca)).resolve()
    token_url = f"{target.server}/{tenant['id']}/oauth2/v2.0/token"
    curl = (
        f"curl --cacert {shlex.quote(str(ca))} {token_url} -d grant_type=client_credentials "
        f"-d client_id={demo['client_id']} --data-urlencode client_secret@{shlex.quote(str(data_dir.resolve()))}"
        f"/{SECRET_FILE} -d scope={DEMO_API}/.default"
    )
    prog = _program()
    lines = [
        "",
        "Keyless is up.",
        f"  issuer          {tenant['issuer']}",
        f"  token endpoint  {token_url}",
        f"  JWKS            {target.server}/{tenant['id']}/discovery/v2.0/keys",
        f"  CA certificate  {ca}",
        f"  web console     {target.server}/console/  (sign in: `{_program()} console`)",
        "",
        f"Demo: application 'orders-worker' ({demo['client_id']}) holds role {DEMO_ROLE} on {DEMO_API}.",
        f"  It just got a token, verified against the JWKS: aud={claims['aud']} roles={claims.get('roles')}",
        f"  It read secret '{VAULT_SECRET}' from vault '{VAULT}' at {vault_url} (the Key Vault API), with",
        "  Secrets.Get on that one secret; the read is in the audit log.",
        examples,
        "",
        "Try next:",
        f"  {curl}",
        f"  export KEYLESS_DATA_DIR={shlex.quote(str(data_dir))}",
        f"  {prog} app list",
        f"  {prog} vault secret get {VAULT} {VAULT_SECRET}",
        f"  {prog} log signins",
        f"  {prog} --help",
        "",
        "Press Ctrl+C to stop.",
    ]
    typer.echo("\n".join(lines))


@shared(None, remote=False)
def up(
    port: Annotated[int | None, typer.Option(help="HTTPS port (default 8443, or the data dir's).")] = None,
    *, opts: Shared,
) -> None:
    """Initialise if needed, serve (token service on PORT, vault on PORT+2), create a demo API, worker
    and vault secret, fetch and verify a token, read the secret as the worker, and keep serving until
    interrupted.

    Example: keyless up --data-dir .keyless --port 8443
    """
    from keyless.server.init import initialize
    from keyless.server.run import run_server, serve
    from keyless.server.settings import ServerSettings

    chosen = port or config_port(opts.data_dir) or 8443
    if not (opts.data_dir / "config.json").exists():
        typer.echo(f"Initialising {opts.data_dir} (database, signing key, local CA, TLS certificate) ...")
        asyncio.run(initialize(opts.data_dir, server_url=f"https://127.0.0.1:{chosen}"))
    typer.echo(f"Starting the server on https://127.0.0.1:{chosen} (vault on port {chosen + 2}) ...")
    config = json.loads((opts.data_dir / "config.json").read_text())
    url = f"https://127.0.0.1:{chosen}"
    if config.get("server_url") != url:  # `up --port N` on an existing directory: the dev server moves
        config["server_url"] = url
        (opts.data_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    settings = ServerSettings(data_dir=opts.data_dir, port=chosen, log_level="warning", vault_port=chosen + 2,
                              vault_domain=config.get("vault_domain", "vault.localhost"),
                              public_url=url, move_public_url=True)
    failure: list[BaseException] = []
    started: list[subprocess.Popen[bytes]] = []

    def ready(_ctx: object) -> None:
        typer.echo("Listening. Running the demo (applications, a token, a vault read, the example API) ...")

        def work() -> None:
            try:
                _show(opts.data_dir, chosen, settings, started)
            except BaseException as exc:  # shown, and the server keeps running for inspection
                failure.append(exc)
                typer.echo(f"error: the demo failed: {exc}", err=True)

        threading.Thread(target=work, daemon=True).start()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            run_server(serve(settings, on_ready=ready))
    finally:
        for proc in started:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
    if failure:
        raise typer.Exit(1)
