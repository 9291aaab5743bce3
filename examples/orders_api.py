"""An example API protected by Keyless access tokens.

    GET  /orders  needs the app role Orders.Read
    POST /orders  needs the app role Orders.Write

Configuration (environment):

    KEYLESS_ISSUER      the tenant's issuer, exactly the tokens' `iss` (https://host:port/<tenant-id>/v2.0)
    KEYLESS_AUDIENCE    this API's identifier URI (default: api://orders)
    KEYLESS_CA          CA bundle for the issuer's TLS certificate (e.g. .keyless/ca/ca.pem); unset: system store
    KEYLESS_ALGORITHMS  accepted signing algorithms, comma-separated (default: RS256,ES256)

Run:  python examples/orders_api.py --port 8081
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from keyless.verify import AccessToken, TokenValidator, require_roles


class NewOrder(BaseModel):
    item: str
    quantity: int = 1


def create_app() -> FastAPI:
    validator = TokenValidator(
        issuer=os.environ["KEYLESS_ISSUER"],
        audience=os.environ.get("KEYLESS_AUDIENCE", "api://orders"),
        algorithms=[a.strip() for a in os.environ.get("KEYLESS_ALGORITHMS", "RS256,ES256").split(",") if a.strip()],
        ca=os.environ.get("KEYLESS_CA") or None,
    )
    orders: list[dict[str, object]] = []  # in memory: this is a demo
    app = FastAPI(title="orders (Keyless example)")

    @app.get("/orders")
    async def list_orders(token: AccessToken = require_roles(validator, "Orders.Read")) -> dict[str, object]:
        return {"caller": token.client_id, "orders": orders}

    @app.post("/orders", status_code=201)
    async def create_order(order: NewOrder,
                           token: AccessToken = require_roles(validator, "Orders.Write")) -> dict[str, object]:
        created = {"id": len(orders) + 1, "item": order.item, "quantity": order.quantity,
                   "created_by": token.client_id}
        orders.append(created)
        return created

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    if not os.environ.get("KEYLESS_ISSUER"):
        parser.exit(2, "orders_api: set KEYLESS_ISSUER (see `keyless tenant show`)\n")
    # Plain HTTP, and only on loopback: fine for trying the example. Serve a real API over TLS
    # (or behind a TLS-terminating proxy) — bearer tokens must not cross a network in the clear.
    # The token service itself (Keyless) is always HTTPS.
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
