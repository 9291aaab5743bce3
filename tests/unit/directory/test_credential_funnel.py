"""Every new credential goes through one funnel (`CredentialService.record`, issue 12 item 1): the
credential policy (docs/policies.md) and the audit record's policy notes are applied in one module,
so a rule added there applies to secrets, certificates, host certificates and federated credentials
alike. A write path that asked the policy itself would escape a change made in the funnel."""

from __future__ import annotations

import ast
from pathlib import Path

import keyless

SRC = Path(keyless.__file__).parent
FUNNEL = SRC / "directory" / "credentials.py"
POLICY_CALLS = {"check_write", "audit_details", "with_notice"}


def _calls(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in POLICY_CALLS:
                found.add(name)
    return found


def test_only_the_credential_funnel_asks_the_policy_about_a_new_credential() -> None:
    callers = {str(p.relative_to(SRC)): calls for p in SRC.rglob("*.py") if (calls := _calls(p))}
    assert callers == {str(FUNNEL.relative_to(SRC)): POLICY_CALLS}


def test_federation_and_hosts_write_their_credentials_through_the_funnel() -> None:
    for module in ("federation.py", "hosts.py"):
        text = (SRC / "directory" / module).read_text()
        assert "self._credentials.record" in text, module
