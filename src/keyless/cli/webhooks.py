"""`keyless webhook …`: register HTTPS endpoints for the tenant's events, read the delivery log, and
send a delivery again (docs/notifications.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from urllib.parse import quote

import typer

from keyless.cli.common import (
    LimitOpt,
    Output,
    emit,
    when,
)
from keyless.cli.options import Shared, shared
from keyless.domain.events import EVENT_TYPES

app = typer.Typer(help="Webhooks: signed notifications of expiring, unused and leaked credentials and more.",
                  no_args_is_help=True)

EventType = StrEnum("EventType", {t: t for t in sorted(EVENT_TYPES)})  # type: ignore[misc]
DeliveryState = StrEnum("DeliveryState", {s: s for s in ("pending", "delivered", "failed")})  # type: ignore[misc]
FORMATTERS = {c: when for c in ("created_at", "next_attempt_at", "last_attempt_at", "delivered_at", "time")}
HOOK_COLUMNS = ("id", "url", "event_types", "description", "created_at")
DELIVERY_COLUMNS = ("id", "event_type", "state", "attempts", "last_status", "last_error", "last_attempt_at",
                    "next_attempt_at")
WebhookArg = Annotated[str, typer.Argument(metavar="WEBHOOK_ID", help="Webhook endpoint id.", show_default=False)]
DeliveryArg = Annotated[str, typer.Argument(metavar="DELIVERY_ID", help="Delivery id (dlv_…).", show_default=False)]


@app.command("add")
@shared(Output.json)
def add(
    url: Annotated[str, typer.Argument(help="https URL of the receiver.", show_default=False)],
    event: Annotated[list[EventType] | None, typer.Option(
        "--event", help="An event type to receive (repeat); default: every type.")] = None,
    description: Annotated[str, typer.Option("--description", help="What the endpoint is for.")] = "",
    *, opts: Shared,
) -> None:
    """Register a webhook endpoint; print its signing secret (whsec_…) once.

    Receivers verify each delivery with any Standard Webhooks library and that secret. The URL must
    be https and public: loopback, link-local and private addresses are refused unless the server's
    operator allows them (KEYLESS_WEBHOOK_ALLOW_PRIVATE).

    Example: keyless webhook add https://hooks.example.com/keyless --event credential.expiring --event leak.reported
    """
    body = {"url": url, "description": description, "event_types": [str(e) for e in event or []]}
    created = opts.client().call("POST", "/webhooks", json_body=body)
    emit(created, opts.output, formatters=FORMATTERS)
    if opts.output is Output.table:
        typer.echo("The secret is shown once: store it with the receiver now.", err=True)


@app.command("list")
@shared(Output.table)
def list_webhooks(
    limit: LimitOpt = None,
    *, opts: Shared,
) -> None:
    """List webhook endpoints (never their secrets).

    Example: keyless webhook list -o json
    """
    emit(opts.client().collect("/webhooks", limit=limit), opts.output, columns=HOOK_COLUMNS,
         formatters=FORMATTERS)


@app.command("remove")
@shared(Output.json)
def remove(
    webhook: WebhookArg,
    *, opts: Shared,
) -> None:
    """Remove a webhook endpoint and its delivery log.

    Example: keyless webhook remove 0b6f3c9e-8d1a-4c55-9a4e-2f1f0f6b7c11
    """
    opts.client().call("DELETE", f"/webhooks/{quote(webhook, safe='')}")
    if opts.output is Output.json:
        emit({"removed": True, "webhook": webhook}, opts.output)
    else:
        typer.echo(f"removed webhook {webhook}")


@app.command("deliveries")
@shared(Output.table)
def deliveries(
    delivery: Annotated[str | None, typer.Argument(
        metavar="[DELIVERY_ID]", help="Show this delivery and every attempt at it.", show_default=False)] = None,
    webhook: Annotated[str | None, typer.Option("--webhook", help="Only this endpoint's deliveries.")] = None,
    state: Annotated[DeliveryState | None, typer.Option("--state", help="Only deliveries in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 100,
    *, opts: Shared,
) -> None:
    """The delivery log, newest first; with a DELIVERY_ID, that delivery and its attempts.

    Example: keyless webhook deliveries --state failed -o json
    """
    api = opts.client()
    if delivery is not None:
        data = api.call("GET", f"/webhook-deliveries/{quote(delivery, safe='')}")
        if opts.output is Output.table:
            data = {**data, "log": [f"{when(a['time'])} {a['status'] or '-'} {a['error'] or 'ok'} {a['duration_ms']} ms"
                                    for a in data["log"]]}
        emit(data, opts.output, formatters=FORMATTERS)
        return
    params: dict[str, str | int] = {}
    if webhook:
        params["webhook"] = webhook
    if state:
        params["state"] = str(state)
    emit(api.collect("/webhook-deliveries", params=params, limit=limit), opts.output, columns=DELIVERY_COLUMNS,
         formatters=FORMATTERS)


@app.command("redeliver")
@shared(Output.json)
def redeliver(
    delivery: DeliveryArg,
    *, opts: Shared,
) -> None:
    """Send a delivery again now, with the same webhook-id (receivers deduplicate on it).

    Example: keyless webhook redeliver dlv_3f0c1e2d4b5a69788796a5b4c3d2e1f0
    """
    emit(opts.client().call("POST", f"/webhook-deliveries/{quote(delivery, safe='')}/redeliver"),
         opts.output, formatters=FORMATTERS)


@app.command("ping")
@shared(Output.json)
def ping(
    webhook: WebhookArg,
    *, opts: Shared,
) -> None:
    """Send a webhook.ping to this endpoint alone, to check its URL, TLS and signature check end to end.

    Example: keyless webhook ping 0b6f3c9e-8d1a-4c55-9a4e-2f1f0f6b7c11
    """
    emit(opts.client().call("POST", f"/webhooks/{quote(webhook, safe='')}/ping"), opts.output,
         formatters=FORMATTERS)
