"""The native vault API under `/{tenant}/manage/v1/vaults` (what the CLI uses).

Vaults and grants are directory objects: reading needs Keyless.Reader, changing needs Keyless.Admin.
Secrets are data: any authenticated management caller may ask, and the vault's own grants for the
caller's object id decide, exactly as on the Key Vault-compatible API — an admin of the directory
reads no secret it was not granted.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from keyless.paging import BY_CREATED, Order
from keyless.server.context import ServerContext
from keyless.server.manage import vault_schemas as vs
from keyless.server.manage.auth import Caller
from keyless.server.manage.deps import PREFIX, Admin, Reader, VaultData
from keyless.server.manage.paging import Paging
from keyless.server.manage.strict_json import StrictJsonRoute
from keyless.server.vault.resource import ensure_vault_resource
from keyless.vault import model as m
from keyless.vault.model import SecretAttributes

router = APIRouter(prefix=PREFIX + "/vaults", tags=["vault"], route_class=StrictJsonRoute)
PageSize = Annotated[int | None, Query(ge=1, le=25)]
PageToken = Annotated[str | None, Query(max_length=200)]
IfMatch = Annotated[str | None, Header(max_length=64)]
BY_NAME: Order[m.Vault] = Order(lambda v: (v.name,), (str,))


def _ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def _who(caller: Caller) -> m.Principal:
    return m.Principal(tenant_id=caller.tenant.id, object_id=caller.object_id, client_id=caller.actor)


def _url(ctx: ServerContext, vault: m.Vault) -> str:
    return ctx.settings.vault_url(vault.name)


async def _vault(request: Request, caller: Caller, name: str) -> m.Vault:
    return await _ctx(request).vaults.vault(caller.tenant.id, name)


@router.get("", response_model=list[vs.VaultOut], summary="List the tenant's vaults")
async def list_vaults(request: Request, caller: Reader, page: Paging) -> list[vs.VaultOut]:
    ctx = _ctx(request)
    return [vs.VaultOut.of(v, _url(ctx, v)) for v in page.take(await ctx.vaults.list_vaults(caller.tenant.id), BY_NAME)]


@router.post("", response_model=vs.VaultOut, status_code=201, summary="Create a vault")
async def create_vault(request: Request, body: vs.VaultCreate, caller: Admin) -> vs.VaultOut:
    ctx = _ctx(request)
    # The tenant's vault resource must exist for anyone to get a vault token; make it only for a
    # create that will succeed, so a refused request changes nothing.
    await ctx.vaults.check_available(body.name, body.retention_days)
    await ensure_vault_resource(ctx, caller.tenant, actor=caller.actor)
    vault = await ctx.vaults.create_vault(caller.tenant.id, body.name, actor=caller.actor,
                                          retention_days=body.retention_days, purge_protection=body.purge_protection,
                                          owner=_who(caller) if body.grant_self else None)
    return vs.VaultOut.of(vault, _url(ctx, vault))


@router.get("/{vault}", response_model=vs.VaultOut, summary="Show a vault")
async def get_vault(request: Request, vault: str, caller: Reader) -> vs.VaultOut:
    return vs.VaultOut.of(v := await _vault(request, caller, vault), _url(_ctx(request), v))


@router.patch("/{vault}", response_model=vs.VaultOut, summary="Change retention; turn on purge protection")
async def patch_vault(request: Request, vault: str, body: vs.VaultPatch, caller: Admin) -> vs.VaultOut:
    ctx = _ctx(request)
    v = await ctx.vaults.update_vault(caller.tenant.id, vault, actor=caller.actor,
                                      retention_days=body.retention_days, purge_protection=body.purge_protection)
    return vs.VaultOut.of(v, _url(ctx, v))


@router.post("/{vault}/rotate-key", response_model=vs.KeyRotated,
             summary="New vault key; re-wrap every data key under it (values are not re-encrypted)")
async def rotate_key(request: Request, vault: str, caller: Admin) -> vs.KeyRotated:
    result = await _ctx(request).vaults.rotate_key(caller.tenant.id, vault, actor=caller.actor)
    return vs.KeyRotated.model_validate(result)


@router.get("/{vault}/grants", response_model=list[vs.VaultGrantOut], summary="List the vault's grants")
async def list_grants(request: Request, vault: str, caller: Reader, page: Paging) -> list[vs.VaultGrantOut]:
    grants = await _ctx(request).vaults.list_grants(caller.tenant.id, vault)
    return [vs.VaultGrantOut.of(g) for g in page.take(grants, BY_CREATED)]


@router.post("/{vault}/grants", response_model=list[vs.VaultGrantOut], status_code=201,
             summary="Grant an application roles on the vault or on one secret")
async def add_grant(request: Request, vault: str, body: vs.VaultGrantCreate, caller: Admin) -> list[vs.VaultGrantOut]:
    ctx = _ctx(request)
    app = await ctx.admin.resolve_application(caller.tenant, body.principal)
    principal = m.Principal(tenant_id=caller.tenant.id, object_id=app.object_id, client_id=app.client_id)
    grants = await ctx.vaults.grant(caller.tenant.id, vault, principal, body.roles, actor=caller.actor,
                                    secret=body.secret)
    return [vs.VaultGrantOut.of(g) for g in grants]


@router.delete("/{vault}/grants/{grant_id}", status_code=204, summary="Remove a vault grant")
async def remove_grant(request: Request, vault: str, grant_id: str, caller: Admin) -> Response:
    await _ctx(request).vaults.revoke(caller.tenant.id, vault, grant_id, actor=caller.actor)
    return Response(status_code=204)


# -- secrets (data: the vault's grants decide) ------------------------------------------------------
@router.get("/{vault}/secrets", response_model=vs.SecretPage, summary="List secrets (latest version of each)")
async def list_secrets(request: Request, vault: str, caller: VaultData, max_results: PageSize = None,
                       page_token: PageToken = None) -> vs.SecretPage:
    v = await _vault(request, caller, vault)
    items, token = await _ctx(request).vaults.list_secrets(v, _who(caller), token=page_token, limit=max_results)
    return vs.SecretPage(items=[vs.VaultSecretOut.of(i) for i in items], next_page_token=token)


@router.put("/{vault}/secrets/{name}", response_model=vs.VaultSecretOut, summary="Set a secret (a new version)")
async def set_secret(request: Request, vault: str, name: str, body: vs.SecretSet, caller: VaultData,
                     if_match: IfMatch = None) -> vs.VaultSecretOut:
    v = await _vault(request, caller, vault)
    attributes = SecretAttributes(enabled=body.enabled, not_before=body.not_before, expires=body.expires,
                                  content_type=body.content_type, tags=body.tags)
    version = await _ctx(request).vaults.set_secret(v, _who(caller), name, body.value, attributes, if_match=if_match)
    return vs.VaultSecretOut.of(version)


@router.get("/{vault}/secrets/{name}", response_model=vs.SecretValueOut,
            summary="Read a secret's value (the latest version, or ?version=)")
async def get_secret(request: Request, vault: str, name: str, caller: VaultData,
                     version: Annotated[str | None, Query(max_length=64)] = None) -> vs.SecretValueOut:
    v = await _vault(request, caller, vault)
    secret = await _ctx(request).vaults.get_secret(v, _who(caller), name, version)
    return vs.SecretValueOut.model_validate({**vs.VaultSecretOut.fields(secret.version), "value": secret.value})


@router.patch("/{vault}/secrets/{name}", response_model=vs.VaultSecretOut,
              summary="Change a version's attributes (the latest, or ?version=)")
async def update_secret(request: Request, vault: str, name: str, body: vs.SecretPatch, caller: VaultData,
                        version: Annotated[str | None, Query(max_length=64)] = None,
                        if_match: IfMatch = None) -> vs.VaultSecretOut:
    v = await _vault(request, caller, vault)
    changes = body.model_dump(exclude_unset=True)
    updated = await _ctx(request).vaults.update_secret(v, _who(caller), name, version, changes, if_match=if_match)
    return vs.VaultSecretOut.of(updated)


@router.get("/{vault}/secrets/{name}/versions", response_model=vs.SecretPage, summary="List a secret's versions")
async def list_versions(request: Request, vault: str, name: str, caller: VaultData, max_results: PageSize = None,
                        page_token: PageToken = None) -> vs.SecretPage:
    v = await _vault(request, caller, vault)
    items, token = await _ctx(request).vaults.list_versions(v, _who(caller), name, token=page_token,
                                                            limit=max_results)
    return vs.SecretPage(items=[vs.VaultSecretOut.of(i) for i in items], next_page_token=token)


@router.delete("/{vault}/secrets/{name}", response_model=vs.DeletedOut, summary="Soft-delete a secret")
async def delete_secret(request: Request, vault: str, name: str, caller: VaultData) -> vs.DeletedOut:
    v = await _vault(request, caller, vault)
    return vs.DeletedOut.deleted(await _ctx(request).vaults.delete_secret(v, _who(caller), name))


@router.post("/{vault}/secrets/{name}/backup", response_model=vs.Backup,
             summary="An encrypted backup of every version, restorable in this tenant only")
async def backup_secret(request: Request, vault: str, name: str, caller: VaultData) -> vs.Backup:
    v = await _vault(request, caller, vault)
    return vs.Backup(backup=await _ctx(request).vaults.backup(v, _who(caller), name))


@router.post("/{vault}/restore", response_model=vs.VaultSecretOut, summary="Restore a secret from a backup")
async def restore_secret(request: Request, vault: str, body: vs.Backup, caller: VaultData) -> vs.VaultSecretOut:
    v = await _vault(request, caller, vault)
    return vs.VaultSecretOut.of(await _ctx(request).vaults.restore(v, _who(caller), body.backup))


@router.get("/{vault}/deleted", response_model=vs.DeletedPage, summary="List soft-deleted secrets")
async def list_deleted(request: Request, vault: str, caller: VaultData, max_results: PageSize = None,
                       page_token: PageToken = None) -> vs.DeletedPage:
    v = await _vault(request, caller, vault)
    items, token = await _ctx(request).vaults.list_deleted(v, _who(caller), token=page_token, limit=max_results)
    return vs.DeletedPage(items=[vs.DeletedOut.deleted(d) for d in items], next_page_token=token)


@router.get("/{vault}/deleted/{name}", response_model=vs.DeletedOut, summary="Show a soft-deleted secret")
async def get_deleted(request: Request, vault: str, name: str, caller: VaultData) -> vs.DeletedOut:
    v = await _vault(request, caller, vault)
    return vs.DeletedOut.deleted(await _ctx(request).vaults.get_deleted(v, _who(caller), name))


@router.post("/{vault}/deleted/{name}/recover", response_model=vs.VaultSecretOut, summary="Recover a deleted secret")
async def recover_secret(request: Request, vault: str, name: str, caller: VaultData) -> vs.VaultSecretOut:
    v = await _vault(request, caller, vault)
    return vs.VaultSecretOut.of(await _ctx(request).vaults.recover(v, _who(caller), name))


@router.delete("/{vault}/deleted/{name}", status_code=204, summary="Purge a deleted secret for good")
async def purge_secret(request: Request, vault: str, name: str, caller: VaultData) -> Response:
    v = await _vault(request, caller, vault)
    await _ctx(request).vaults.purge(v, _who(caller), name)
    return Response(status_code=204)
