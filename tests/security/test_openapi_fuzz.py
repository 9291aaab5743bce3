"""No request the management API's own OpenAPI document describes, or nearly describes, makes it answer
5xx or drop the connection (issue 11 item 8, docs/security.md "Bad Unicode is a 400"). Schemathesis
generates positive cases (valid per the document) and negative ones (each violating it somewhere) for
every operation, sent with an administrator's token to a server of its own (the cases change its state).
Bounded: a few examples per operation and mode, no shrinking, well under a minute."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from tests.support.server import Admin, RunningServer, start_server, stop_server

EXAMPLES = 4  # per operation and mode: about 60 operations x 2 modes x 4 requests
UNSENDABLE = (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
              UnicodeError, ValueError)  # the client library refuses to send these; the server never sees them


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("openapi-fuzz"))
    try:
        yield srv
    finally:
        stop_server(srv)


def _schema(server: RunningServer) -> Any:
    with httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=10) as http:
        document = http.get(f"{server.url}/manage/openapi.json").raise_for_status().json()
    return schemathesis.openapi.from_dict(document)


def test_schemathesis_finds_no_5xx_in_the_management_api(fuzzed: RunningServer) -> None:
    schema = _schema(fuzzed)
    failures: list[str] = []
    sent = 0
    with Admin(fuzzed) as admin, requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in _modes(operation):
                headers = {"Authorization": f"Bearer {admin.api.token()}"}
                sent += _fuzz(fuzzed, session, operation, mode, headers, failures)
    assert sent > 100
    assert failures == [], "\n".join(failures) + "\n" + _tail(fuzzed.log_path)


def _fuzz(server: RunningServer, session: requests.Session, operation: Any, mode: GenerationMode,
          headers: dict[str, str], failures: list[str]) -> int:
    """Send up to EXAMPLES cases of one operation in one mode; returns how many reached the server."""
    sent = 0
    path_parameters = {"tenant": server.tenant_id} if "{tenant}" in operation.path else None

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: Any) -> None:
        nonlocal sent
        try:
            response = case.call(base_url=server.url, session=session, headers=headers, timeout=10,
                                 verify=server.ca)
        except UNSENDABLE:
            return
        except requests.exceptions.ConnectionError as exc:
            failures.append(f"{case.method} {case.formatted_path}: connection dropped ({exc})")
            return
        sent += 1
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

    with contextlib.suppress(Unsatisfiable):  # the document leaves nothing to vary in this mode
        run()
    return sent


def _modes(operation: Any) -> tuple[GenerationMode, ...]:
    """Negative cases only where something besides the path can be wrong: any text is a valid path
    segment of these string parameters, so negative path-only cases are unsatisfiable (and slow to find out)."""
    locations = {p.location for p in operation.iter_parameters()} - {ParameterLocation.PATH}
    if locations or list(operation.get_request_payload_content_types()):
        return (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    return (GenerationMode.POSITIVE,)


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-20:])
