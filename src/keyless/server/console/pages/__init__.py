"""Every console route with its declared access, one module per area (`keyless.server.console.access`)."""

from __future__ import annotations

from keyless.server.console.access import ConsoleRoute
from keyless.server.console.pages import (
    applications,
    credentials,
    federated,
    logs,
    overview,
    policies,
    posture,
    settings,
    vaults,
)

ROUTES: tuple[ConsoleRoute, ...] = (
    *overview.ROUTES, *applications.ROUTES, *credentials.ROUTES, *federated.ROUTES, *logs.ROUTES, *settings.ROUTES,
    *vaults.ROUTES, *posture.ROUTES, *policies.ROUTES,
)
