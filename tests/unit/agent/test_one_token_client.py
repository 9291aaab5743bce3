"""The host agent obtains its tokens through the one token client, `keyless.client` (issue 12 item
4; docs/architecture.md, "An agent request"): its request form, its assertion auth and its sans-IO
exchange, not a copy of them. A second copy would drift from the SDK (a header, a retry rule, the
way an error body is read) without any test of the SDK noticing."""

from __future__ import annotations

import ast
from pathlib import Path

import keyless.agent

AGENT = Path(keyless.agent.__file__).parent
# The token request's own fields (the agent's enrollment API also carries a `client_assertion`, in JSON).
WIRE_FIELDS = {"grant_type", "client_assertion_type", "client_credentials"}


def _strings(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_no_agent_module_builds_a_token_request_form_of_its_own() -> None:
    found = {p.name: hits for p in AGENT.rglob("*.py") if (hits := _strings(p) & WIRE_FIELDS)}
    assert found == {}


def test_the_agent_asks_for_tokens_with_the_clients_flow_and_assertion_auth() -> None:
    server_api = (AGENT / "server_api.py").read_text()
    for name in ("token_request", "exchange", "drive"):
        assert f"{name}(" in server_api, name
    assert "AssertionAuth(" in (AGENT / "credential.py").read_text()
