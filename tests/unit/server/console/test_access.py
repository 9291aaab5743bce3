"""Console routes declare their access (issue 20's rule, applied to the console): every route needs
a session, and no route that changes state is open to a Reader; and a session lives no longer than
the secret or certificate it signed in with."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from keyless.domain.model import Application, Certificate, ClientRecord, ClientSecret
from keyless.server.console.access import (
    ADMIN,
    READER,
    SESSION,
    Console,
    ConsoleRoute,
    check_declarations,
    signed_in_with_live,
)
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


APP = Application(client_id="c-1", tenant_id="t-1", display_name="cli", object_id="o-1")
SECRET = ClientSecret(id="s-1", client_id="c-1", hint="abc", digest=b"", pepper_id="p", created_at=0.0,
                      expires_at=2_000.0)
CERT = Certificate(id="k-1", owner_id="c-1", x5t="x", x5t_s256="y", der=b"", subject="CN=cli",
                         key_type="EC", key_size=256, not_before=0.0, not_after=2_000.0, created_at=0.0)


@pytest.mark.parametrize(("credential_id", "credential_type", "now", "live"), [
    ("s-1", "secret", 1_000.0, True),
    ("s-1", "secret", 2_000.0, False),  # expired
    ("s-2", "secret", 1_000.0, False),  # revoked: no longer among the application's live secrets
    ("k-1", "secret", 1_000.0, False),  # a certificate's id claimed as a secret
    ("k-1", "certificate", 1_000.0, True),
    ("k-1", "certificate", 2_000.0, False),
    ("k-2", "certificate", 1_000.0, False),
    (None, None, 1_000.0, True),  # a token from before the credential claims: the app and role checks only
    ("f-1", "federated", 1_000.0, True),
])
def test_a_session_of_a_revoked_or_expired_credential_is_not_live(
    credential_id: str | None, credential_type: str | None, now: float, live: bool,
) -> None:
    """A leaked secret or certificate, once revoked, no longer keeps the console sessions it opened."""
    client = ClientRecord(app=APP, secrets=(SECRET,), certificates=(CERT,))
    assert signed_in_with_live(client, credential_id, credential_type, now) is live
