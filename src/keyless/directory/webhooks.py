"""Webhook endpoints and deliveries: the management use cases (docs/notifications.md).

An endpoint is an https URL of the tenant's choosing that receives the tenant's events, signed per
Standard Webhooks with a `whsec_…` key made here, returned once, and stored only sealed under the KEK
(`keyless.crypto.aead`, bound to the endpoint's id). The URL is checked against the SSRF rules before
it is stored (`check_url`, the server's checked-address rules; catalog O01) and again at every
delivery. The audit record names the URL's host, not the URL: receivers often carry a token in it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from keyless import text
from keyless.clock import Clock
from keyless.crypto import aead
from keyless.crypto import webhooks as signing
from keyless.directory.base import UseCases, _nothing
from keyless.directory.errors import Invalid, NotFound
from keyless.domain.events import EVENT_TYPES, WEBHOOK_PING, Event
from keyless.domain.webhooks import Attempt, Delivery, WebhookEndpoint, WebhookStore
from keyless.ids import new_guid

MAX_ENDPOINTS = 20
MAX_URL = 2048


def sealing_aad(endpoint_id: str) -> bytes:
    return f"webhook-secret:{endpoint_id}".encode()


class WebhookService(UseCases):
    def __init__(self, store: WebhookStore, clock: Clock, kek: bytes,
                 check_url: Callable[[str], Awaitable[str | None]],
                 on_change: Callable[[], None] = _nothing) -> None:
        """`check_url` returns None when the URL may be called, else a stable reason (O01)."""
        super().__init__(clock, on_change)
        self._store = store
        self._kek = kek
        self._check_url = check_url

    async def add(self, tenant_id: str, url: str, *, actor: str, description: str = "",
                  event_types: Sequence[str] = ()) -> tuple[WebhookEndpoint, str]:
        """Register an endpoint; returns it and its signing secret (the only time it is shown)."""
        if len(url) > MAX_URL or not text.printable(url) or urlsplit(url).scheme != "https":
            raise Invalid("invalid_webhook_url", "a webhook URL is an https:// URL of at most 2048 characters")
        unknown = sorted(set(event_types) - EVENT_TYPES)
        if unknown:
            raise Invalid("unknown_event_type", f"unknown event type {unknown[0]!r}; known: "
                          + ", ".join(sorted(EVENT_TYPES)))
        if not text.printable(description) or len(description) > 256:
            raise Invalid("invalid_description", "a description is at most 256 printable characters")
        refused = await self._check_url(url)
        if refused is not None:
            raise Invalid("webhook_url_refused", f"the URL may not be called ({refused}): loopback, link-local, "
                          "private and unresolvable addresses are refused unless the server allows them")
        if len(await self._store.list_endpoints(tenant_id)) >= MAX_ENDPOINTS:
            raise Invalid("too_many_webhooks", f"a tenant has at most {MAX_ENDPOINTS} webhook endpoints")
        endpoint = WebhookEndpoint(id=new_guid(), tenant_id=tenant_id, url=url, description=description,
                                   event_types=tuple(sorted(set(event_types))), created_at=self._clock.now())
        secret = signing.new_secret()
        sealed = aead.seal(self._kek, signing.key_of(secret), sealing_aad(endpoint.id))
        await self._store.add_endpoint(endpoint, sealed, self._audit(
            tenant_id, actor, "webhook.create", "webhook", endpoint.id, host=urlsplit(url).hostname or "",
            event_types=list(endpoint.event_types)))
        self._on_change()
        return endpoint, secret

    async def list(self, tenant_id: str) -> Sequence[WebhookEndpoint]:
        return await self._store.list_endpoints(tenant_id)

    async def get(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
        found = await self._store.get_endpoint(tenant_id, endpoint_id)
        if found is None:
            raise NotFound("webhook_not_found", "no such webhook endpoint")
        return found

    async def remove(self, tenant_id: str, endpoint_id: str, *, actor: str) -> None:
        endpoint = await self.get(tenant_id, endpoint_id)
        if not await self._store.remove_endpoint(tenant_id, endpoint_id, self._audit(
                tenant_id, actor, "webhook.delete", "webhook", endpoint_id,
                host=urlsplit(endpoint.url).hostname or "")):
            raise NotFound("webhook_not_found", "no such webhook endpoint")
        self._on_change()

    async def deliveries(self, tenant_id: str, *, endpoint_id: str | None = None, state: str | None = None,
                         limit: int = 100, after: tuple[float, str] | None = None) -> Sequence[Delivery]:
        if endpoint_id is not None:
            await self.get(tenant_id, endpoint_id)
        return await self._store.list_deliveries(tenant_id, endpoint_id=endpoint_id, state=state, limit=limit,
                                                 after=after)

    async def delivery(self, tenant_id: str, delivery_id: str) -> tuple[Delivery, Sequence[Attempt]]:
        found = await self._store.get_delivery(tenant_id, delivery_id)
        if found is None:
            raise NotFound("delivery_not_found", "no such delivery")
        return found, await self._store.attempts(tenant_id, delivery_id)

    async def ping(self, tenant_id: str, endpoint_id: str, *, actor: str) -> Delivery:
        """Send a `webhook.ping` to this endpoint alone: a receiver's end-to-end check of URL, TLS and
        signature."""
        endpoint = await self.get(tenant_id, endpoint_id)
        event = Event(WEBHOOK_PING, tenant_id, self._clock.now(), endpoint.id, {"webhook_id": endpoint.id})
        delivery_id = await self._store.ping(endpoint, event, self._audit(
            tenant_id, actor, "webhook.ping", "webhook", endpoint.id, event_id=event.id))
        self._on_change()
        delivery, _ = await self.delivery(tenant_id, delivery_id)
        return delivery

    async def redeliver(self, tenant_id: str, delivery_id: str, *, actor: str) -> Delivery:
        """Send the delivery again now, with the same event id (receivers deduplicate on it)."""
        if not await self._store.redeliver(tenant_id, delivery_id, self._clock.now(), self._audit(
                tenant_id, actor, "webhook.redeliver", "delivery", delivery_id)):
            raise NotFound("delivery_not_found", "no such delivery")
        self._on_change()
        delivery, _ = await self.delivery(tenant_id, delivery_id)
        return delivery
