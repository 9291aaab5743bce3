"""One credential model, one funnel each way (issue 12 item 1; docs/architecture.md):

- every new credential goes through `CredentialService.record`, where the credential policy
  (docs/policies.md) and the audit record's policy notes are applied, so a rule added there applies to
  secrets, certificates, host certificates and federated credentials alike;
- every revocation and removal goes through `CredentialService.retire`, one path that has the store
  write the change with its audit record (and events) and tells the caches, whoever ends the
  credential (an admin, federation's remove, the reaper, a leak report);
- one store module (`keyless.store.credentials`) holds every statement that writes a credential table,
  for every owner kind; other aggregates change credential rows only through its functions.

A write path that escaped one of these would escape a change made in the funnel: the guards below
walk the source, and the last test drives every removal against a real store."""

from __future__ import annotations

import ast
from collections.abc import Awaitable
from pathlib import Path

import keyless
from keyless.directory.federation import FederationService
from keyless.directory.reaping import Reaper, plan, rule_for
from keyless.domain.credentials import Owner
from keyless.domain.policies import Policy, Reaping
from keyless.domain.ports import LogQuery
from keyless.store.federation import SqlFederationStore
from keyless.store.hosts import SqlHostStore
from tests.unit.directory.conftest import START, Env
from tests.unit.directory.test_credential_inventory import every_kind

SRC = Path(keyless.__file__).parent
FUNNEL = SRC / "directory" / "credentials.py"
STORE = SRC / "store" / "credentials.py"
POLICY_CALLS = {"check_write", "audit_details", "with_notice"}
CREDENTIAL_TABLES = {"client_secrets", "certificates", "federated_credentials"}
# The credential store's writes: only the funnel calls them on a store.
STORE_WRITES = {"add_secret", "revoke_secret", "add_certificate", "revoke_certificate", "add_federated_credential",
                "remove_federated_credential", "disable_unused", "delete_revoked"}


def _modules() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if "migrations" not in p.parts]


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _calls(path: Path) -> set[str]:
    return {name for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Call) and (name := _name(node.func)) in POLICY_CALLS}


def test_only_the_credential_funnel_asks_the_policy_about_a_new_credential() -> None:
    callers = {str(p.relative_to(SRC)): calls for p in _modules() if (calls := _calls(p))}
    assert callers == {str(FUNNEL.relative_to(SRC)): POLICY_CALLS}


def _table(node: ast.expr, aliases: set[str]) -> bool:
    """`t.client_secrets` (any credential table), or a local name bound to one."""
    if isinstance(node, ast.Attribute):
        return node.attr in CREDENTIAL_TABLES
    return isinstance(node, ast.Name) and node.id in aliases


def _credential_table_writes(path: Path) -> list[int]:
    """Lines of `insert(...)`, `update(...)` or `delete(...)` of a credential table in `path`."""
    tree = ast.parse(path.read_text(), str(path))
    aliases: set[str] = set()
    for node in ast.walk(tree):  # `cs = t.client_secrets`, `apps, cs = t.applications, t.client_secrets`
        if isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = (zip(target.elts, node.value.elts, strict=False)
                         if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                         else [(target, node.value)])
                aliases |= {name.id for name, value in pairs
                            if isinstance(name, ast.Name) and isinstance(value, ast.Attribute)
                            and value.attr in CREDENTIAL_TABLES}
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and _name(node.func) in {"insert", "update", "delete"} and node.args
            and _table(node.args[0], aliases)]


def test_the_guard_sees_a_write_to_a_credential_table(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("cs = t.client_secrets\nupdate(cs).values(revoked_at=1)\ndelete(t.certificates)\n"
                      "select(t.federated_credentials)\n")
    assert sorted(_credential_table_writes(sample)) == [2, 3]


def test_only_the_credential_store_module_writes_credential_tables() -> None:
    writers = {str(p.relative_to(SRC)): lines for p in _modules() if (lines := _credential_table_writes(p))}
    assert set(writers) == {str(STORE.relative_to(SRC))}


def _store_writes_outside_the_funnel(path: Path) -> list[str]:
    """Calls of a credential write (or a leak record, which revokes) on a store that are not inside an
    argument of `retire(...)`, the funnel's one path for ending a credential."""
    tree = ast.parse(path.read_text(), str(path))
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) == "retire":
            inside |= {id(n) for arg in node.args for n in ast.walk(arg)}
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in STORE_WRITES | {"record_leak"} and id(node) not in inside
                and "store" in ast.unparse(node.func.value)):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node.func)}")
    return found


def test_every_credential_write_and_removal_goes_through_the_credential_service() -> None:
    """Outside the funnel, no use case calls a credential write on a store, and the one that records a
    leak (revoking its secret) does it inside `retire`."""
    escaped = [hit for p in _modules() if p != FUNNEL and "store" not in p.relative_to(SRC).parts
               for hit in _store_writes_outside_the_funnel(p)]
    assert escaped == []
    federation = (SRC / "directory" / "federation.py").read_text()
    assert "self._credentials.add_federated" in federation and "self._credentials.remove_federated" in federation
    assert "self._credentials.record_host_certificate" in (SRC / "directory" / "hosts.py").read_text()
    assert "self._credentials.retire" in (SRC / "directory" / "leaks.py").read_text()


async def test_every_removal_writes_one_audit_record_and_tells_the_caches_once(env: Env) -> None:
    """Each way a credential ends, of each kind and owner kind that can end by itself, goes through
    the one path: one audit record of its action (contents as before), and one cache notice."""
    made = await every_kind(env)
    svc = env.service
    federation = FederationService(SqlFederationStore(env.store.engine), env.store, env.clock,
                                   identities=SqlHostStore(env.store.engine, env.store),
                                   credentials=svc.credentials)

    async def ends(action: str, end: Awaitable[object]) -> None:
        before = env.changes
        await end
        records = await svc.audit(LogQuery(tenant_id=env.tenant.id, action=action))
        assert len(records) == 1, action
        assert env.changes == before + 1, action

    await ends("secret.leaked", svc.leaks.report(made.plaintext, tenant=env.tenant, location="repo/.env:1",
                                                 source="test", reporter="t"))
    await ends("certificate.revoke", svc.revoke_certificate(env.tenant, made.app.client_id, made.cert.id, actor="t"))
    owner = Owner("identity", made.identity.client_id)
    await ends("federated_credential.remove", federation.remove(env.tenant, owner, "prod", actor="t"))
    records = await svc.audit(LogQuery(tenant_id=env.tenant.id, action="federated_credential.remove"))
    assert (records[0].target_type, records[0].target_id, records[0].details) == (
        "identity", made.identity.client_id, {"credential_id": made.fed.id, "name": "prod"})

    other, _ = await svc.add_secret(env.tenant, made.app.client_id, actor="t", expires_in=30 * 86400)
    env.clock.advance(11 * 86400)
    scanned = await svc.credentials.inventory(env.tenant)
    reaper = Reaper(svc.credentials, env.clock)
    before = env.changes
    rules = rule_for({None: Policy(reaping=Reaping("enforce", unused_days=10))})
    done = await reaper.run(env.tenant.id, plan(scanned, [], env.clock.now(), rules), {})
    assert done.disabled == 1 and env.changes == before + 1
    assert [r.target_id for r in await svc.audit(LogQuery(tenant_id=env.tenant.id, action="credential.disable"))] == [
        other.id]
    assert [c.id for c in await svc.credentials.inventory(env.tenant)] == [made.host_cert.id]


async def test_a_host_certificate_is_written_by_the_credential_store(env: Env) -> None:
    """Enrollment's host-row change runs inside the credential store's write: the certificate, the
    enrolled host and the audit record commit together."""
    made = await every_kind(env)
    certs = await env.store.host_certificates(made.host.id)
    assert [(c.id, c.owner_kind) for c in certs] == [(made.host_cert.id, "host")]
    enrolled = await env.service.audit(LogQuery(tenant_id=env.tenant.id, action="host.enroll"))
    assert [(r.target_id, r.details["certificate_id"]) for r in enrolled] == [(made.host.id, made.host_cert.id)]
    host = await SqlHostStore(env.store.engine, env.store).get_host(env.tenant.id, made.host.id)
    assert host is not None and (host.enrolled_at, host.join_digest) == (made.host_cert.created_at, None)
    assert made.host_cert.created_at >= START
