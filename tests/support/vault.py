"""Vault setup for tests, through the real management API and token endpoint."""

from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.server import Admin, RunningServer

API = "api-version=7.6"


@dataclass
class VaultUser:
    client_id: str
    object_id: str
    secret: str = ""


def new_vault(admin: Admin, *, purge_protection: bool = False, retention_days: int = 90) -> str:
    name = f"v{uuid.uuid4().hex[:12]}"
    admin.api.call("POST", "/vaults", json_body={"name": name, "purge_protection": purge_protection,
                                                 "retention_days": retention_days})
    return name


def new_user(admin: Admin, vault: str | None = None, roles: tuple[str, ...] = ("Secrets.Officer",),
             secret: str | None = None) -> VaultUser:
    app = admin.app(f"vault-user-{uuid.uuid4().hex[:6]}")
    user = VaultUser(app["client_id"], app["object_id"], admin.secret(app["client_id"])["secret"])
    if vault is not None:
        grant(admin, vault, user, roles, secret=secret)
    return user


def grant(admin: Admin, vault: str, principal: VaultUser | str, roles: tuple[str, ...], *,
          secret: str | None = None) -> Any:
    """`principal`: a test user, or any principal reference (a managed identity's client id, …)."""
    ref = principal if isinstance(principal, str) else principal.client_id
    return admin.api.call("POST", f"/vaults/{vault}/grants",
                          json_body={"principal": ref, "roles": list(roles), "secret": secret})


def vault_token(server: RunningServer, user: VaultUser) -> str:
    with httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=10) as http:
        resp = http.post(server.token_endpoint, data={
            "grant_type": "client_credentials", "client_id": user.client_id, "client_secret": user.secret,
            "scope": f"{server.vault_resource}/.default"})
    resp.raise_for_status()
    return str(resp.json()["access_token"])


class VaultHttp:
    """httpx against one vault by host name (`{vault}.vault.localhost`, over SNI, connecting to
    127.0.0.1), or against the default vault when `vault` is None."""

    def __init__(self, server: RunningServer, vault: str | None, token: str | None = None) -> None:
        self.server = server
        self.host = f"{vault}.vault.localhost:{server.vault_port}" if vault else f"127.0.0.1:{server.vault_port}"
        self.token = token
        self.http = httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=10)

    def __enter__(self) -> VaultHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None,
                api: str | None = API, auth: bool = True) -> httpx.Response:
        sep = "&" if "?" in path else "?"
        url = f"https://127.0.0.1:{self.server.vault_port}{path}" + (f"{sep}{api}" if api else "")
        hdrs = {"Host": self.host, **(headers or {})}
        if auth and self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        return self.http.request(method, url, json=json, headers=hdrs,
                                 extensions={"sni_hostname": self.host.rsplit(":", 1)[0]})


def resolve_localhost_names(monkeypatch: Any) -> None:
    """RFC 6761 §6.3 for this process: names under `.localhost` are loopback (systemd-resolved answers
    so; the libc resolver on these machines does not). Vaults are addressed as {vault}.vault.localhost."""
    import socket

    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        return real("127.0.0.1" if name.endswith(".localhost") else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
