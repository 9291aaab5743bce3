"""The Key Vault-compatible API (compat §5 and §7): one vault per host name or port, at the URL root.

Order of checks on every request: which vault (a `/vaults/{name}` path prefix, else the Host
header), which route (raw path, G01), a declared body over the cap (413, before anything is read),
the bearer token (401 with the challenge `azure-keyvault-secrets` needs), then the operation, whose
grants are checked before any secret is looked up. Every response carries `Cache-Control: no-store`
(G11); values appear only in the body of an explicit read, never in errors, logs or URLs (G07)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from keyless.server.bearer import BearerInvalid, BearerMissing
from keyless.server.context import ServerContext
from keyless.server.metrics import VAULT_REQUESTS
from keyless.server.routes.common import BodyTooLarge
from keyless.server.vault import wire
from keyless.server.vault.request import VaultRequest, VaultResponse
from keyless.server.vault.routing import NoRoute, Route, route
from keyless.vault import model as m
from keyless.vault.errors import BadParameter, TooLarge, Unreadable, VaultError

log = logging.getLogger("keyless.vault")
MAX_BODY = 200 * 1024  # a 25 KiB value, JSON-escaped at worst 6x, plus tags
MAX_RESTORE_BODY = 4 * 1024 * 1024
_API_VERSION = re.compile(r"(\d{1,2}\.\d{1,2}|\d{4}-\d{2}-\d{2})(-preview(\.\d{1,2})?)?")
_MEDIA = b"application/json; charset=utf-8"
_SPLITS_HEAD = re.compile(rb"[\x00-\x08\n-\x1f\x7f]")
BY_PATH = "/vaults/"  # https://{any host}:{vault_port}/vaults/{name}/secrets/… (vault.md)

Handler = Callable[["VaultApi", VaultRequest, m.Vault, str, m.Principal, Route], Awaitable[VaultResponse]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> VaultResponse:
    """A JSON answer with `Cache-Control: no-store`, its headers in the order Starlette's `Response`
    sent them. A header value that could split the head (a control character: uvicorn's own rule) is
    refused here, whichever layer sends the answer: only the challenge's carries configured text."""
    data = orjson.dumps(body)
    raw = [(b"cache-control", b"no-store")]
    if headers:
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if any(_SPLITS_HEAD.search(value) for _, value in raw):
            raise RuntimeError("a response header value with a control character")
    raw += [(b"content-length", b"%d" % len(data)), (b"content-type", _MEDIA)]
    return VaultResponse(status, raw, data)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> VaultResponse:
    return _json(wire.error(code, message), status, headers)


class VaultApi:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self._suffix = "." + settings.vault_domain
        self._default = settings.default_vault
        self._canonical = f"https://{settings.url_host}:{settings.vault_port}"
        self._plain_hosts = {"localhost", "127.0.0.1", "[::1]", settings.url_host}
        self._counters: dict[tuple[str, int], Any] = {}
        # Pure functions of what a client sends again and again (its Host header, its query string):
        # remembered, boundedly, when accepted; a refused input is checked afresh each time.
        self._addresses: dict[str, tuple[str, str]] = {}
        self._api_versions: dict[bytes, bool] = {}
        self._routes: dict[tuple[str, str], Route] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.answer(VaultRequest.from_scope(scope, receive))
        await response.send(send)

    async def answer(self, request: VaultRequest) -> VaultResponse:
        """The response to one request, counted (ASGI and the listener's own vault path alike)."""
        operation: list[str] = []
        response = await self.handle(request, operation)
        key = (operation[0] if operation else "none", response.status)
        counter = self._counters.get(key)
        if counter is None:  # operations and statuses are a small fixed set: label each pair once
            counter = self._counters[key] = VAULT_REQUESTS.labels(key[0], str(key[1]))
        counter.inc()
        return response

    # -- request pipeline --------------------------------------------------------------------------
    def _by_path(self, request: VaultRequest, raw: str) -> tuple[str, str, str] | None:
        """`/vaults/{name}/secrets/…` on any host: (vault name, rest of the path, URL base for
        `nextLink`s), so a vault is reachable by IP address where no name resolves (vault.md). `id`s
        keep the host-name form: the Azure client parses them as `https://host/secrets/name/version`."""
        if not raw.startswith(BY_PATH):
            return None
        name, slash, rest = raw[len(BY_PATH):].partition("/")
        if not name or not slash:
            raise NoRoute(404)
        host = (request.header(b"host") or "").lower() or self._canonical.removeprefix("https://")
        return name.lower(), "/" + rest, f"https://{host}{BY_PATH}{name}"

    def _address(self, request: VaultRequest) -> tuple[str, str]:
        """(vault name, URL base for `id`s and `nextLink`s) from the Host header."""
        host = (request.header(b"host") or "").lower()
        known = self._addresses.get(host)
        if known is None:
            known = _remember(self._addresses, host, self._resolve_host(host))
        return known

    def _resolve_host(self, host: str) -> tuple[str, str]:
        hostname, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not hostname or not port.isdigit():
            hostname, port = host, ""
        if hostname.endswith(self._suffix) and "." not in hostname[: -len(self._suffix)]:
            return hostname[: -len(self._suffix)], f"https://{host}"
        if hostname in self._plain_hosts:
            return self._default, f"https://{host}"
        return self._default, self._canonical

    async def handle(self, request: VaultRequest, operation: list[str]) -> VaultResponse:
        """The response to one request; `operation` receives the route's name once it is known."""
        who: m.Principal | None = None
        vault: m.Vault | None = None
        try:
            raw = request.raw_path
            by_path = self._by_path(request, raw)
            if by_path is None:
                name, base = self._address(request)
            else:
                name, raw, request.links = by_path
                base = self.ctx.settings.vault_url(name)
            vault = await self.ctx.vaults.find(name)
            r = self._routes.get((request.method, raw)) or _remember(self._routes, (request.method, raw),
                                                                     route(request.method, raw))
            operation.append(r.action)
            declared = request.header(b"content-length")
            if declared is None:
                declared = "0"
            if not declared.isdigit() or int(declared) > (MAX_RESTORE_BODY if r.action == "restore" else MAX_BODY):
                raise TooLarge("the request body is too large")
            if not self._api_version_ok(request):
                raise BadParameter("api-version is missing or not a known version")
            tenant = await self.ctx.directory.get_tenant(vault.tenant_id)
            if tenant is None:
                raise Unreadable("the vault's tenant is gone")
            try:
                access = await self.ctx.bearers.verify(tenant, request.header(b"authorization"),
                                                       self.ctx.vault_resource)
            except BearerMissing:
                return self._challenge(vault, "AKV10000: Request is missing a Bearer token.")
            except BearerInvalid:
                return self._challenge(vault, "AKV10022: Invalid audience, issuer or signature.",
                                       error="invalid_token")
            who = m.Principal(tenant_id=vault.tenant_id, object_id=access.subject, client_id=access.client_id)
            return await _HANDLERS[r.action](self, request, vault, base, who, r)
        except NoRoute as exc:
            return _error(exc.status, "NotFound" if exc.status == 404 else "MethodNotAllowed",
                          "no such operation" if exc.status == 404 else "method not allowed on this path")
        except VaultError as exc:
            if isinstance(exc, Unreadable):
                log.error("vault integrity failure", extra={"event": "vault_unreadable",
                                                           "vault": vault.name if vault else None})
            elif who is not None and vault is not None and exc.status in (403, 404):
                self.ctx.audits.record(self.ctx.vaults.denied(vault, who, operation[-1], exc.code))
            return _error(exc.status, exc.code, exc.message)

    def _api_version_ok(self, request: VaultRequest) -> bool:
        raw = request.query
        ok = self._api_versions.get(raw)
        if ok is None:
            ok = bool(_API_VERSION.fullmatch(request.params.get("api-version", "")))
            if ok:
                _remember(self._api_versions, raw, ok)
        return ok

    def _challenge(self, vault: m.Vault, message: str, *, error: str | None = None) -> VaultResponse:
        value = f'Bearer authorization="{self.ctx.base_url}/{vault.tenant_id}", resource="{self.ctx.vault_resource}"'
        if error:
            value += f', error="{error}"'
        return _error(401, "Unauthorized", message, {"www-authenticate": value})

    async def body(self, request: VaultRequest, route_: Route) -> dict[str, Any]:
        try:
            raw = await request.body(MAX_RESTORE_BODY if route_.action == "restore" else MAX_BODY)
        except BodyTooLarge:
            raise TooLarge("the request body is too large") from None
        try:
            data = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            raise BadParameter("the body is not JSON") from None
        if not isinstance(data, dict):
            raise BadParameter("the body must be a JSON object")
        return data


def _remember(memo: dict[Any, Any], key: Any, value: Any, limit: int = 256) -> Any:
    """Store `value` under `key`, emptying `memo` first once it holds `limit` entries (memory stays
    bounded whatever clients send); returns `value`."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value


def _number(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadParameter(f"{what} must be a Unix time in seconds")
    return float(value)


def _changes(body: dict[str, Any]) -> dict[str, Any]:
    """Attribute changes a PUT or PATCH body asks for, by `SecretAttributes` field name."""
    out: dict[str, Any] = {}
    if "contentType" in body:
        out["content_type"] = body["contentType"]
    if "tags" in body:
        out["tags"] = body["tags"]
    attrs = body.get("attributes")
    if attrs is not None:
        if not isinstance(attrs, dict):
            raise BadParameter("attributes must be an object")
        if "enabled" in attrs:
            if not isinstance(attrs["enabled"], bool):
                raise BadParameter("attributes.enabled must be true or false")
            out["enabled"] = attrs["enabled"]
        if "nbf" in attrs:
            out["not_before"] = _number(attrs["nbf"], "attributes.nbf")
        if "exp" in attrs:
            out["expires"] = _number(attrs["exp"], "attributes.exp")
    return out


def _page_size(request: VaultRequest) -> int | None:
    raw = request.params.get("maxresults")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 4:
        raise BadParameter("maxresults must be a number")
    return int(raw)


def _next_link(request: VaultRequest, base: str, path: str, token: str | None) -> str | None:
    if token is None:
        return None
    base = request.links or base  # the path form keeps its own URLs for paging
    link = f"{base}{path}?api-version={request.params['api-version']}&$skiptoken={token}"
    size = request.params.get("maxresults")
    return link + (f"&maxresults={size}" if size else "")


# -- handlers --------------------------------------------------------------------------------------
async def _set(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
               r: Route) -> VaultResponse:
    body = await api.body(request, r)
    value = body.get("value")
    if not isinstance(value, str):
        raise BadParameter("value is required and must be a string")
    attributes = m.SecretAttributes(**_changes(body))
    assert r.name is not None
    version = await api.ctx.vaults.set_secret(vault, who, r.name, value, attributes,
                                              if_match=request.header(b"if-match"))
    return _json(wire.bundle(version, vault, base, value))


async def _get(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
               r: Route) -> VaultResponse:
    assert r.name is not None
    secret = await api.ctx.vaults.get_secret(vault, who, r.name, r.version)
    return _json(wire.bundle(secret.version, vault, base, secret.value))


async def _update(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
                  r: Route) -> VaultResponse:
    body = await api.body(request, r)
    assert r.name is not None
    version = await api.ctx.vaults.update_secret(vault, who, r.name, r.version, _changes(body),
                                                 if_match=request.header(b"if-match"))
    return _json(wire.bundle(version, vault, base))


async def _list(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
               r: Route) -> VaultResponse:
    items, token = await api.ctx.vaults.list_secrets(vault, who, token=request.params.get("$skiptoken"),
                                                     limit=_page_size(request))
    return _json({"value": [wire.item(v, vault, base) for v in items],
                  "nextLink": _next_link(request, base, "/secrets", token)})


async def _versions(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
                    r: Route) -> VaultResponse:
    assert r.name is not None
    items, token = await api.ctx.vaults.list_versions(vault, who, r.name,
                                                      token=request.params.get("$skiptoken"),
                                                      limit=_page_size(request))
    return _json({"value": [wire.item(v, vault, base, versioned=True) for v in items],
                  "nextLink": _next_link(request, base, f"/secrets/{r.name}/versions", token)})


async def _delete(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
                  r: Route) -> VaultResponse:
    assert r.name is not None
    return _json(wire.deleted(await api.ctx.vaults.delete_secret(vault, who, r.name), vault, base))


async def _get_deleted(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
                       r: Route) -> VaultResponse:
    assert r.name is not None
    return _json(wire.deleted(await api.ctx.vaults.get_deleted(vault, who, r.name), vault, base))


async def _list_deleted(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
                        r: Route) -> VaultResponse:
    items, token = await api.ctx.vaults.list_deleted(vault, who, token=request.params.get("$skiptoken"),
                                                     limit=_page_size(request))
    return _json({"value": [wire.deleted(d, vault, base, as_item=True) for d in items],
                  "nextLink": _next_link(request, base, "/deletedsecrets", token)})


async def _purge(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
               r: Route) -> VaultResponse:
    assert r.name is not None
    await api.ctx.vaults.purge(vault, who, r.name)
    return VaultResponse(204, [(b"cache-control", b"no-store")])


async def _recover(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
                   r: Route) -> VaultResponse:
    assert r.name is not None
    return _json(wire.bundle(await api.ctx.vaults.recover(vault, who, r.name), vault, base))


async def _backup(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
                  r: Route) -> VaultResponse:
    assert r.name is not None
    return _json({"value": await api.ctx.vaults.backup(vault, who, r.name)})


async def _restore(api: VaultApi, request: VaultRequest, vault: m.Vault, base: str, who: m.Principal,
                   r: Route) -> VaultResponse:
    blob = (await api.body(request, r)).get("value")
    if not isinstance(blob, str):
        raise BadParameter("value (the backup blob) is required")
    return _json(wire.bundle(await api.ctx.vaults.restore(vault, who, blob), vault, base))


_HANDLERS: dict[str, Handler] = {
    "set": _set, "get": _get, "update": _update, "list": _list, "versions": _versions, "delete": _delete,
    "get_deleted": _get_deleted, "list_deleted": _list_deleted, "purge": _purge, "recover": _recover,
    "backup": _backup, "restore": _restore,
}
