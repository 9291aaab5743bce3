"""Vaults: names, secrets, versions and dates; a value only after an explicit reveal (a POST, so
the value never rides in a URL, audited by the vault service as every read is); soft-deleted
secrets with recover and purge. Secret data needs the vault's own grant for the session's
credential, exactly as on the vault APIs (`VAULT_DATA`): a directory admin reads no secret it was
not granted."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from keyless.server.console.access import READER, VAULT_DATA, Console, ConsoleRoute
from keyless.server.console.render import page
from keyless.vault import model as m
from keyless.vault.errors import VaultError

PAGE = 25


def _who(c: Console) -> m.Principal:
    return m.Principal(tenant_id=c.tenant.id, object_id=c.session.object_id, client_id=c.session.client_id)


async def _vault(c: Console) -> m.Vault:
    return await c.ctx.vaults.vault(c.tenant.id, c.request.path_params["vault"])


async def list_vaults(c: Console) -> Response:
    return page(c, "vaults.html", title="Vaults", vaults=await c.ctx.vaults.list_vaults(c.tenant.id))


async def vault_detail(c: Console) -> Response:
    vault, who = await _vault(c), _who(c)
    secrets: list[m.SecretVersion] = []
    deleted: list[m.DeletedSecret] = []
    denied = None
    token = c.query("after") or None
    try:
        found, after = await c.ctx.vaults.list_secrets(vault, who, token=token, limit=PAGE)
        secrets = list(found)
        deleted = list((await c.ctx.vaults.list_deleted(vault, who, token=None, limit=PAGE))[0])
    except VaultError as exc:
        denied, after = exc.message, None
    grants = await c.ctx.vaults.list_grants(c.tenant.id, vault.name)
    return page(c, "vault.html", title=f"Vault {vault.name}", vault=vault, secrets=secrets, deleted=deleted,
                denied=denied, after=after, grants=grants)


async def secret_versions(c: Console) -> Response:
    vault, name = await _vault(c), c.request.path_params["name"]
    versions, _ = await c.ctx.vaults.list_versions(vault, _who(c), name, token=None, limit=PAGE)
    return page(c, "secret.html", title=f"Secret {name}", vault=vault, name=name, versions=versions)


async def reveal(c: Console) -> Response:
    vault, name = await _vault(c), c.request.path_params["name"]
    version = c.field("version") or None
    value = await c.ctx.vaults.get_secret(vault, _who(c), name, version)
    return page(c, "revealed.html", title=f"Secret {name}", vault=vault, name=name, value=value)


async def recover(c: Console) -> Response:
    vault, name = await _vault(c), c.request.path_params["name"]
    c.require_confirmation()
    await c.ctx.vaults.recover(vault, _who(c), name)
    return RedirectResponse(f"/console/vaults/{vault.name}", status_code=303)


async def purge(c: Console) -> Response:
    vault, name = await _vault(c), c.request.path_params["name"]
    c.require_confirmation()
    await c.ctx.vaults.purge(vault, _who(c), name)
    return RedirectResponse(f"/console/vaults/{vault.name}", status_code=303)


ROUTES = (
    ConsoleRoute("/vaults", list_vaults, READER),
    ConsoleRoute("/vaults/{vault}", vault_detail, READER),
    ConsoleRoute("/vaults/{vault}/secrets/{name}", secret_versions, VAULT_DATA),
    ConsoleRoute("/vaults/{vault}/secrets/{name}/reveal", reveal, VAULT_DATA, methods=("POST",)),
    ConsoleRoute("/vaults/{vault}/deleted/{name}/recover", recover, VAULT_DATA, methods=("POST",)),
    ConsoleRoute("/vaults/{vault}/deleted/{name}/purge", purge, VAULT_DATA, methods=("POST",)),
)
