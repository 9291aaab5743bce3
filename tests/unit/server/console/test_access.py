"""Console routes declare their access (issue 20's rule, applied to the console): every route needs
a session, and no route that changes state is open to a Reader."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from keyless.server.console.access import ADMIN, READER, SESSION, Console, ConsoleRoute, check_declarations
from keyless.server.console.pages import ROUTES
from keyless.server.manage.access import PUBLIC


async def _nothing(c: Console) -> Response:
    return Response()


def test_the_console_declares_every_route() -> None:
    check_declarations(ROUTES)
    writes = [r for r in ROUTES if r.writes]
    assert writes and all(r.requirement is not READER for r in writes)
    assert [r.path for r in writes if r.requirement is SESSION] == ["/logout"]


@pytest.mark.parametrize("route", [
    ConsoleRoute("/open", _nothing, PUBLIC),
    ConsoleRoute("/write", _nothing, READER, methods=("POST",)),
])
def test_an_undeclared_or_reader_write_route_is_refused_at_build_time(route: ConsoleRoute) -> None:
    with pytest.raises(ValueError, match=route.path):
        check_declarations([*ROUTES, route])


def test_admin_writes_are_accepted() -> None:
    check_declarations([ConsoleRoute("/w", _nothing, ADMIN, methods=("POST",))])
