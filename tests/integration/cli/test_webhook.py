"""`keyless webhook add|list|remove|deliveries|redeliver` against a real server and receiver
(docs/cli.md, "Webhooks")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import SHARED_ENV
from tests.integration.cli.helpers import one_error_line
from tests.support.server import RunningServer, start_server, stop_server
from tests.support.webhooks import Receiver, receiver


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Receiver]]:
    with receiver(tmp_path_factory.mktemp("cli-receiver")) as hooks:
        srv = start_server(Path(tmp_path_factory.mktemp("cli-webhooks")), env={**SHARED_ENV, **hooks.env()})
        try:
            yield srv, hooks
        finally:
            stop_server(srv)


def test_add_list_deliveries_redeliver_remove(hooked: tuple[RunningServer, Receiver]) -> None:
    srv, hooks = hooked
    added = srv.cli_json("webhook", "add", hooks.url, "--event", "signing_key.rotated", "--description", "ops")
    assert added["secret"].startswith("whsec_") and added["event_types"] == ["signing_key.rotated"]
    listed = srv.cli_json("webhook", "list")
    assert [h["id"] for h in listed] == [added["id"]] and "secret" not in listed[0]
    assert added["secret"] not in srv.cli("webhook", "list").stdout

    srv.cli_json("key", "rotate", "--activate-in", "1d")
    [got] = hooks.wait_for(1)
    Webhook(added["secret"]).verify(got.body, got.headers)
    deadline = time.monotonic() + 10
    while (log := srv.cli_json("webhook", "deliveries", "--webhook", added["id"]))[0]["state"] != "delivered":
        assert time.monotonic() < deadline, log
        time.sleep(0.1)
    delivery = log[0]
    assert delivery["event_id"] == got.headers["webhook-id"] and delivery["attempts"] == 1
    detail = srv.cli_json("webhook", "deliveries", delivery["id"])
    assert [(a["status"], a["error"]) for a in detail["log"]] == [(204, None)]

    again = srv.cli_json("webhook", "redeliver", delivery["id"])
    assert again["state"] == "pending" and again["event_id"] == delivery["event_id"]
    assert [r.headers["webhook-id"] for r in hooks.wait_for(2)] == [delivery["event_id"]] * 2

    other = srv.cli_json("webhook", "add", hooks.url.replace("/hook", "/other"))  # every type
    pinged = srv.cli_json("webhook", "ping", added["id"])
    assert (pinged["event_type"], pinged["endpoint_id"]) == ("webhook.ping", added["id"])
    got = [r for r in hooks.wait_for(3) if r.json()["type"] == "webhook.ping"]
    assert [r.path for r in got] == ["/hook"]  # that endpoint alone, whatever the others subscribe to
    assert Webhook(added["secret"]).verify(got[0].body, got[0].headers)["subject"] == added["id"]
    srv.cli_json("webhook", "remove", other["id"])

    assert srv.cli_json("webhook", "remove", added["id"]) == {"removed": True, "webhook": added["id"]}
    assert srv.cli_json("webhook", "list") == []


def test_a_refused_url_is_one_error_line(hooked: tuple[RunningServer, Receiver]) -> None:
    srv, _ = hooked
    refused = srv.cli("webhook", "add", "https://10.0.0.1/hook", check=False)
    assert refused.returncode == 1
    assert "private_address" in one_error_line(refused.stderr)
    unknown = srv.cli("webhook", "remove", "no-such-webhook", check=False)
    assert unknown.returncode == 1 and "no such webhook" in one_error_line(unknown.stderr)
