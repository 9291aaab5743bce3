"""Management API for hosts, managed identities, their assignments and workload bindings
(under `/{tenant}/manage/v1`, same roles and problem details as the rest of the API)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from keyless.directory.hosts import DEFAULT_JOIN_TTL, HostService
from keyless.domain.identities import Host, ManagedIdentity, WorkloadBinding
from keyless.paging import BY_CREATED, Order
from keyless.server.context import ServerContext
from keyless.server.manage.deps import PREFIX, Admin, Reader
from keyless.server.manage.paging import Paging
from keyless.server.manage.schemas import Strict
from keyless.server.manage.strict_json import StrictJsonRoute

router = APIRouter(prefix=PREFIX, route_class=StrictJsonRoute)


def hosts_of(request: Request) -> HostService:
    ctx: ServerContext = request.app.state.ctx
    if ctx.hosts is None:
        raise RuntimeError("the server context has no host service")
    return ctx.hosts


class IdentityOut(BaseModel):
    client_id: str
    object_id: str
    name: str
    kind: str
    resource_id: str
    host_id: str | None
    created_at: float

    @classmethod
    def of(cls, i: ManagedIdentity) -> IdentityOut:
        return cls(client_id=i.client_id, object_id=i.object_id, name=i.name, kind=i.kind,
                   resource_id=i.resource_id, host_id=i.host_id, created_at=i.created_at)


class HostOut(BaseModel):
    id: str
    name: str
    system_client_id: str
    created_at: float
    enrolled_at: float | None
    join_expires_at: float | None
    status: str  # pending (join token outstanding), enrolled

    @classmethod
    def of(cls, h: Host) -> HostOut:
        return cls(id=h.id, name=h.name, system_client_id=h.system_client_id, created_at=h.created_at,
                   enrolled_at=h.enrolled_at, join_expires_at=h.join_expires_at,
                   status="enrolled" if h.enrolled_at is not None else "pending")


class HostDetail(HostOut):
    identities: list[IdentityOut]
    certificates: list[dict[str, object]]


class HostCreated(HostOut):
    join_token: str  # shown once
    system_identity: IdentityOut


class JoinToken(BaseModel):
    host_id: str
    join_token: str
    join_expires_at: float


class HostCreate(Strict):
    name: str = Field(max_length=64)
    join_ttl: int = Field(default=DEFAULT_JOIN_TTL, description="seconds the join token stays valid")


class JoinTokenCreate(Strict):
    join_ttl: int = Field(default=DEFAULT_JOIN_TTL)


class IdentityCreate(Strict):
    name: str = Field(max_length=128)


class BindingCreate(Strict):
    host: str = Field(max_length=64)
    uid: int | None = None
    gid: int | None = None
    exe: str | None = Field(default=None, max_length=1024)
    unit: str | None = Field(default=None, max_length=256)


class BindingOut(BaseModel):
    id: str
    host_id: str
    identity_client_id: str
    uid: int | None
    gid: int | None
    exe: str | None
    unit: str | None
    created_at: float

    @classmethod
    def of(cls, b: WorkloadBinding) -> BindingOut:
        return cls(id=b.id, host_id=b.host_id, identity_client_id=b.identity_client_id, uid=b.uid, gid=b.gid,
                   exe=b.exe, unit=b.unit, created_at=b.created_at)


BY_IDENTITY: Order[ManagedIdentity] = Order(lambda i: (i.created_at, i.client_id), (float, str))


@router.get("/hosts", response_model=list[HostOut], summary="List hosts")
async def list_hosts(request: Request, caller: Reader, page: Paging) -> list[HostOut]:
    return [HostOut.of(h) for h in page.take(await hosts_of(request).list_hosts(caller.tenant), BY_CREATED)]


@router.post("/hosts", response_model=HostCreated, status_code=201,
             summary="Add a host (with its system-assigned identity); returns a single-use join token once")
async def add_host(request: Request, body: HostCreate, caller: Admin) -> Response:
    host, identity, token = await hosts_of(request).add_host(caller.tenant, body.name, actor=caller.actor,
                                                             join_ttl=body.join_ttl)
    out = HostCreated(**HostOut.of(host).model_dump(), join_token=token, system_identity=IdentityOut.of(identity))
    return Response(out.model_dump_json(), status_code=201, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


@router.get("/hosts/{ref}", response_model=HostDetail, summary="A host, its identities and certificates")
async def get_host(request: Request, ref: str, caller: Reader) -> HostDetail:
    service = hosts_of(request)
    host = await service.host(caller.tenant, ref)
    identities = [IdentityOut.of(i) for i in await service.host_identities(host)]
    certs: list[dict[str, object]] = [
        {"id": c.id, "x5t_s256": c.x5t_s256, "not_before": c.not_before, "not_after": c.not_after}
        for c in await service.host_certificates(host)
    ]
    return HostDetail(**HostOut.of(host).model_dump(), identities=identities, certificates=certs)


@router.post("/hosts/{ref}/join-token", response_model=JoinToken, status_code=201,
             summary="A new join token for a host that has not enrolled yet")
async def new_join_token(request: Request, ref: str, body: JoinTokenCreate, caller: Admin) -> Response:
    host, token = await hosts_of(request).new_join_token(caller.tenant, ref, actor=caller.actor,
                                                         join_ttl=body.join_ttl)
    out = JoinToken(host_id=host.id, join_token=token, join_expires_at=host.join_expires_at or 0.0)
    return Response(out.model_dump_json(), status_code=201, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


@router.delete("/hosts/{ref}", status_code=204, summary="Remove a host: its tokens stop at once")
async def remove_host(request: Request, ref: str, caller: Admin) -> Response:
    await hosts_of(request).remove_host(caller.tenant, ref, actor=caller.actor)
    return Response(status_code=204)


@router.get("/identities", response_model=list[IdentityOut],
            summary="List managed identities, or find one by ?ref= (name, client id, object id, resource id)")
async def list_identities(request: Request, caller: Reader, page: Paging,
                          kind: Annotated[str | None, Query(pattern="^(system|user)$")] = None,
                          ref: Annotated[str | None, Query(max_length=512)] = None) -> list[IdentityOut]:
    if ref is not None:
        return [IdentityOut.of(await hosts_of(request).identity(caller.tenant, ref))]
    found = [i for i in await hosts_of(request).list_identities(caller.tenant) if kind is None or i.kind == kind]
    return [IdentityOut.of(i) for i in page.take(found, BY_IDENTITY)]


@router.post("/identities", response_model=IdentityOut, status_code=201, summary="Create a user-assigned identity")
async def create_identity(request: Request, body: IdentityCreate, caller: Admin) -> IdentityOut:
    return IdentityOut.of(await hosts_of(request).create_identity(caller.tenant, body.name, actor=caller.actor))


@router.get("/identities/{ref}", response_model=IdentityOut,
            summary="Show a managed identity (by name, client id, object id or resource id)")
async def get_identity(request: Request, ref: str, caller: Reader) -> IdentityOut:
    return IdentityOut.of(await hosts_of(request).identity(caller.tenant, ref))


@router.delete("/identities/{ref}", status_code=204, summary="Delete a user-assigned identity")
async def delete_identity(request: Request, ref: str, caller: Admin) -> Response:
    await hosts_of(request).delete_identity(caller.tenant, ref, actor=caller.actor)
    return Response(status_code=204)


@router.put("/identities/{ref}/hosts/{host}", response_model=IdentityOut,
            summary="Assign a user-assigned identity to a host")
async def assign(request: Request, ref: str, host: str, caller: Admin) -> IdentityOut:
    return IdentityOut.of(await hosts_of(request).assign(caller.tenant, ref, host, actor=caller.actor))


@router.delete("/identities/{ref}/hosts/{host}", status_code=204, summary="Take an identity away from a host")
async def unassign(request: Request, ref: str, host: str, caller: Admin) -> Response:
    await hosts_of(request).unassign(caller.tenant, ref, host, actor=caller.actor)
    return Response(status_code=204)


@router.post("/identities/{ref}/bindings", response_model=BindingOut, status_code=201,
             summary="Bind local callers on a host (uid, gid, exe, unit) to a user-assigned identity")
async def bind(request: Request, ref: str, body: BindingCreate, caller: Admin) -> BindingOut:
    binding = await hosts_of(request).bind(caller.tenant, ref, body.host, actor=caller.actor, uid=body.uid,
                                           gid=body.gid, exe=body.exe, unit=body.unit)
    return BindingOut.of(binding)


@router.get("/bindings", response_model=list[BindingOut], summary="List workload bindings")
async def list_bindings(request: Request, caller: Reader, page: Paging,
                        host: Annotated[str | None, Query(max_length=64)] = None,
                        identity: Annotated[str | None, Query(max_length=512)] = None) -> list[BindingOut]:
    service = hosts_of(request)
    h = await service.host(caller.tenant, host) if host else None
    i = await service.identity(caller.tenant, identity) if identity else None
    return [BindingOut.of(b) for b in page.take(await service.list_bindings(caller.tenant, host=h, identity=i),
                                                BY_CREATED)]


@router.delete("/bindings/{binding_id}", status_code=204, summary="Remove a workload binding")
async def unbind(request: Request, binding_id: str, caller: Admin) -> Response:
    await hosts_of(request).unbind(caller.tenant, binding_id, actor=caller.actor)
    return Response(status_code=204)
