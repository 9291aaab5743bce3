"""Management API for webhook endpoints and their deliveries (docs/notifications.md, docs/api.md).

Registering an endpoint answers its `whsec_…` signing secret once (`Cache-Control: no-store`); no
other answer carries it. Admin registers, removes and redelivers; Reader lists and reads the log.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from keyless.directory.webhooks import WebhookService
from keyless.domain.webhooks import Attempt, Delivery, WebhookEndpoint
from keyless.paging import BY_CREATED
from keyless.server.manage.deps import PREFIX, Admin, Reader, context_of
from keyless.server.manage.paging import Paging
from keyless.server.manage.schemas import Strict
from keyless.server.manage.strict_json import StrictJsonRoute

router = APIRouter(prefix=PREFIX, route_class=StrictJsonRoute)


def webhooks_of(request: Request) -> WebhookService:
    service = context_of(request).webhooks
    if service is None:
        raise RuntimeError("the server context has no webhook service")
    return service


class WebhookCreate(Strict):
    url: str = Field(max_length=2048, description="https URL of the receiver (checked: no private addresses)")
    description: str = Field(default="", max_length=256)
    event_types: list[str] = Field(default_factory=list, max_length=16,
                                   description="event types to receive; empty: every type")


class WebhookOut(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    created_at: float

    @classmethod
    def of(cls, e: WebhookEndpoint) -> WebhookOut:
        return cls(id=e.id, url=e.url, description=e.description, event_types=list(e.event_types),
                   created_at=e.created_at)


class WebhookCreated(WebhookOut):
    secret: str = Field(description="whsec_… signing secret (Standard Webhooks); shown once")


class AttemptOut(BaseModel):
    time: float
    status: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls(time=a.time, status=a.status, error=a.error, duration_ms=a.duration_ms)


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    endpoint_id: str
    state: str
    attempts: int
    next_attempt_at: float | None
    created_at: float
    last_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    delivered_at: float | None

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(id=d.id, event_id=d.event_id, event_type=d.event_type, endpoint_id=d.endpoint_id, state=d.state,
                   attempts=d.attempts, next_attempt_at=d.next_attempt_at if d.state == "pending" else None,
                   created_at=d.created_at, last_attempt_at=d.last_attempt_at, last_status=d.last_status,
                   last_error=d.last_error, delivered_at=d.delivered_at)


class DeliveryDetail(DeliveryOut):
    log: list[AttemptOut]


@router.get("/webhooks", response_model=list[WebhookOut], summary="List webhook endpoints")
async def list_webhooks(request: Request, caller: Reader, page: Paging) -> list[WebhookOut]:
    return [WebhookOut.of(e) for e in page.take(await webhooks_of(request).list(caller.tenant.id), BY_CREATED)]


@router.post("/webhooks", response_model=WebhookCreated, status_code=201,
             summary="Register a webhook endpoint; returns its signing secret once")
async def add_webhook(request: Request, body: WebhookCreate, caller: Admin) -> Response:
    endpoint, secret = await webhooks_of(request).add(caller.tenant.id, body.url, actor=caller.actor,
                                                      description=body.description, event_types=body.event_types)
    out = WebhookCreated(**WebhookOut.of(endpoint).model_dump(), secret=secret)
    return Response(out.model_dump_json(), status_code=201, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, summary="Show a webhook endpoint")
async def get_webhook(request: Request, webhook_id: str, caller: Reader) -> WebhookOut:
    return WebhookOut.of(await webhooks_of(request).get(caller.tenant.id, webhook_id))


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Remove a webhook endpoint and its deliveries")
async def remove_webhook(request: Request, webhook_id: str, caller: Admin) -> Response:
    await webhooks_of(request).remove(caller.tenant.id, webhook_id, actor=caller.actor)
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/ping", response_model=DeliveryOut, status_code=201,
             summary="Send a webhook.ping to this endpoint alone (a receiver's end-to-end check)")
async def ping_webhook(request: Request, webhook_id: str, caller: Admin) -> DeliveryOut:
    return DeliveryOut.of(await webhooks_of(request).ping(caller.tenant.id, webhook_id, actor=caller.actor))


@router.get("/webhook-deliveries", response_model=list[DeliveryOut], summary="The delivery log, newest first")
async def list_deliveries(
    request: Request, caller: Reader, page: Paging,
    webhook: Annotated[str | None, Query(max_length=64, description="one endpoint's deliveries")] = None,
    state: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
) -> list[DeliveryOut]:
    after = page.after((float, str))  # newest first: (created_at, id) of the last one shown
    found = await webhooks_of(request).deliveries(
        caller.tenant.id, endpoint_id=webhook, state=state, limit=page.limit + 1,
        after=None if after is None else (float(after[0]), str(after[1])))
    return [DeliveryOut.of(d) for d in page.cut(found, lambda d: (d.created_at, d.id))]


@router.get("/webhook-deliveries/{delivery_id}", response_model=DeliveryDetail,
            summary="A delivery and every attempt at it")
async def get_delivery(request: Request, delivery_id: str, caller: Reader) -> DeliveryDetail:
    delivery, attempts = await webhooks_of(request).delivery(caller.tenant.id, delivery_id)
    return DeliveryDetail(**DeliveryOut.of(delivery).model_dump(), log=[AttemptOut.of(a) for a in attempts])


@router.post("/webhook-deliveries/{delivery_id}/redeliver", response_model=DeliveryOut,
             summary="Send a delivery again now, with the same webhook-id")
async def redeliver(request: Request, delivery_id: str, caller: Admin) -> DeliveryOut:
    return DeliveryOut.of(await webhooks_of(request).redeliver(caller.tenant.id, delivery_id, actor=caller.actor))
