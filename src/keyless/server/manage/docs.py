"""`/manage/docs`: the management API in Swagger UI, every asset served by Keyless (docs/api.md).

The Swagger UI files come from the `swagger-ui-py` distribution (Apache-2.0, its LICENSE is served
beside them); its Python package is never imported, only its static folder read, so its own
dependencies play no part here. The page loads nothing from anywhere else, and its Content-Security-
Policy says so: a browser on an offline network, or one that forbids third-party scripts, sees the
same page.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response

from keyless.server.manage.access import PublicAccess
from keyless.server.manage.problems import problem
from keyless.server.manage.strict_json import StrictJsonRoute

DOCS = "/manage/docs"
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Keyless management API</title>
<link rel="stylesheet" href="{DOCS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{DOCS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{DOCS}/swagger-ui-bundle.js"></script>
<script src="{DOCS}/init.js"></script>
</body>
</html>
"""
# Served as a file, not inline, so the policy can forbid inline scripts.
_INIT = """window.ui = SwaggerUIBundle({
  url: "/manage/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  persistAuthorization: false
});
"""
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


@cache
def _static() -> Path | None:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@cache
def _read(name: str) -> bytes | None:
    folder = _static()
    if folder is None or not (folder / name).is_file():
        return None
    return (folder / name).read_bytes()


async def page() -> Response:
    """The Swagger UI page for `/manage/openapi.json`."""
    return Response(_PAGE, media_type="text/html; charset=utf-8", headers=_HEADERS)


async def init_script() -> Response:
    """Starts Swagger UI on the document (a file, so the policy needs no inline script)."""
    return Response(_INIT, media_type="text/javascript; charset=utf-8", headers=_HEADERS)


async def asset(name: str) -> Response:
    """One vendored Swagger UI file; only the names in `ASSETS`, so no path reaches the disk."""
    body = _read(name) if name in ASSETS else None
    if body is None:
        return problem(404, "not_found", "Not Found", "no such resource")
    return Response(body, media_type=ASSETS[name], headers=_HEADERS)


def install(app: FastAPI) -> None:
    """Public pages (no token: the page itself holds nothing secret; calls it makes need one)."""
    for path, endpoint in ((DOCS, page), (f"{DOCS}/init.js", init_script), (DOCS + "/{name}", asset)):
        app.router.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False, dependencies=[PublicAccess],
                                 route_class_override=StrictJsonRoute)
