"""The ladder's rules (`keyless.domain.posture`): the rung of a workload and each risk factor, one test
per factor with the case just inside and just outside its threshold."""

from __future__ import annotations

import pytest

from keyless.domain.credentials import Credential, Owner
from keyless.domain.posture import (
    DAY,
    AssessedCredential,
    CredentialFlags,
    LeakNote,
    Thresholds,
    Usage,
    Workload,
    assess,
    rung_of_kinds,
    score_of,
)

NOW = 1_800_000_000.0
TH = Thresholds()
APP = "11111111-1111-1111-1111-111111111111"


def cred(kind: str = "secret", *, cid: str = "c1", created: float = NOW - DAY, expires: float | None = NOW + 60 * DAY,
         last_used: float | None = NOW - 3600, not_before: float | None = None) -> Credential:
    return Credential(id=cid, kind=kind, owner=Owner("application", APP), display_name="n",  # type: ignore[arg-type]
                      created_at=created, expires_at=None if kind == "federated" else expires,
                      not_before=not_before, last_used_at=last_used, label="abc")


def facts(c: Credential, **kw: object) -> AssessedCredential:
    return AssessedCredential(c, **kw)  # type: ignore[arg-type]


def app(*creds: AssessedCredential, kind: str = "application", signins: int = 1, sources: tuple[str, ...] = (),
        created: float = NOW - 400 * DAY) -> Workload:
    return Workload(client_id=APP, display_name="orders worker", kind=kind, created_at=created,  # type: ignore[arg-type]
                    credentials=creds, signins=signins, sources=sources)


def risks(w: Workload) -> set[str]:
    return {f.risk for f in assess(w, {}, NOW, TH).findings}


@pytest.mark.parametrize(("kinds", "kind", "rung"), [
    (set(), "application", "none"),
    ({"secret"}, "application", "secret"),
    ({"secret", "certificate", "federated"}, "application", "secret"),
    ({"certificate", "federated"}, "application", "certificate"),
    ({"federated"}, "application", "federated"),
    ({"secret"}, "identity", "managed_identity"),
    (set(), "identity", "managed_identity"),
])
def test_rung_is_the_weakest_working_credential_and_an_identity_is_on_top(kinds: set[str], kind: str,
                                                                          rung: str) -> None:
    assert rung_of_kinds(kind, frozenset(kinds)) == rung  # type: ignore[arg-type]


def test_expired_and_revoked_credentials_do_not_hold_a_workload_down() -> None:
    old_secret = facts(cred("secret", cid="s", expires=NOW - 1))
    w = app(old_secret, facts(cred("certificate", cid="c")))
    assert assess(w, {}, NOW, TH).rung == "certificate"


def test_long_lived_secret() -> None:
    start = NOW - DAY
    assert "long_lived_secret" in risks(app(facts(cred(created=start, expires=start + TH.long_lived_secret + 1))))
    assert "long_lived_secret" not in risks(app(facts(cred(created=start, expires=start + TH.long_lived_secret))))


def test_secret_never_rotated_flags_only_the_newest_secret_when_it_is_old() -> None:
    old = facts(cred(cid="old", created=NOW - TH.rotation_age - 1))
    assert "secret_never_rotated" in risks(app(old))
    newer = facts(cred(cid="new", created=NOW - 10 * DAY))
    assert "secret_never_rotated" not in risks(app(old, newer))
    assert "secret_never_rotated" not in risks(app(facts(cred(created=NOW - TH.rotation_age + 1))))


def test_several_active_secrets_counts_only_active_ones() -> None:
    assert "several_active_secrets" in risks(app(facts(cred(cid="a")), facts(cred(cid="b"))))
    assert "several_active_secrets" not in risks(app(facts(cred(cid="a")), facts(cred(cid="b", expires=NOW - 1))))


def test_secret_used_from_many_addresses() -> None:
    many = Usage(signins=9, sources=tuple(f"10.0.0.{i}" for i in range(TH.many_addresses + 1)))
    assert "secret_many_addresses" in risks(app(facts(cred(), usage=many)))
    few = Usage(signins=9, sources=tuple(f"10.0.0.{i}" for i in range(TH.many_addresses)))
    assert "secret_many_addresses" not in risks(app(facts(cred(), usage=few)))


def test_certificate_not_from_the_internal_ca() -> None:
    assert "certificate_not_internal_ca" in risks(app(facts(cred("certificate"), from_internal_ca=False)))
    assert "certificate_not_internal_ca" not in risks(app(facts(cred("certificate"), from_internal_ca=True)))
    assert "certificate_not_internal_ca" not in risks(app(facts(cred("certificate"), from_internal_ca=None)))


def test_expiring_soon_only_while_active() -> None:
    assert "expiring_soon" in risks(app(facts(cred(expires=NOW + TH.expiring_soon))))
    assert "expiring_soon" not in risks(app(facts(cred(expires=NOW + TH.expiring_soon + 1))))
    assert "expiring_soon" not in risks(app(facts(cred(expires=NOW - 1))))


def test_broad_federation_subject() -> None:
    assert "broad_federation_subject" in risks(app(facts(cred("federated"), broad_subject=True)))
    assert "broad_federation_subject" not in risks(app(facts(cred("federated"))))


def test_unused_secret_and_certificate_by_last_use() -> None:
    stale = facts(cred(created=NOW - TH.unused - 10, expires=NOW + DAY * 300, last_used=NOW - TH.unused - 1))
    assert "unused" in risks(app(stale))
    never = facts(cred("certificate", created=NOW - TH.unused - 10, last_used=None))
    assert "unused" in risks(app(never))
    recent = facts(cred(created=NOW - TH.unused - 10, expires=NOW + DAY * 300, last_used=NOW - TH.unused + 1))
    assert "unused" not in risks(app(recent))
    young = facts(cred(created=NOW - TH.unused + 1, last_used=None))
    assert "unused" not in risks(app(young))


def test_unused_federated_credential_by_its_last_use_else_the_sign_in_window() -> None:
    old = cred("federated", created=NOW - TH.unused - 1, last_used=None)
    assert "unused" in risks(app(facts(old)))
    assert "unused" not in risks(app(facts(old, usage=Usage(signins=1, sources=("10.0.0.1",), last_at=NOW))))
    stale = cred("federated", created=NOW - TH.unused - 10, last_used=NOW - TH.unused - 1)
    assert "unused" in risks(app(facts(stale)))
    recent = cred("federated", created=NOW - TH.unused - 10, last_used=NOW - TH.unused + 1)
    assert "unused" not in risks(app(facts(recent)))


def test_unused_identity() -> None:
    assert "unused" in risks(app(kind="identity", signins=0))
    assert "unused" not in risks(app(kind="identity", signins=3))
    assert "unused" not in risks(app(kind="identity", signins=0, created=NOW - DAY))


def test_leaked() -> None:
    assert "leaked" in risks(app(facts(cred(), leaked=True)))
    assert "leaked" not in risks(app(facts(cred())))


def test_a_leak_that_revoked_the_secret_stays_a_finding_of_the_workload() -> None:
    note = LeakNote("gone", "kls_Ab3", "github.com/acme/api/blob/main/.env:3", NOW - DAY)
    w = Workload(client_id=APP, display_name="w", kind="application", created_at=NOW - DAY, leaks=(note,))
    found = assess(w, {}, NOW, TH).findings
    assert [(f.risk, f.credential_id) for f in found] == [("leaked", "gone")]
    assert "kls_Ab3..." in found[0].message and ".env:3" in found[0].message
    live = Workload(client_id=APP, display_name="w", kind="application", created_at=NOW - DAY, leaks=(note,),
                    credentials=(facts(cred(cid="gone"), leaked=True),))
    assert [f.risk for f in assess(live, {}, NOW, TH).findings] == ["leaked"]  # once, as the credential's


def test_agent_hosts_come_from_the_host_map_and_the_rest_stays_unknown() -> None:
    w = app(facts(cred()), sources=("10.0.0.5", "10.0.0.9"))
    a = assess(w, {"10.0.0.5": "web-01"}, NOW, TH)
    assert a.agent_hosts == ("web-01",) and a.unknown_sources == ("10.0.0.9",)


def test_score_shares_and_index() -> None:
    groups = [CredentialFlags("application", frozenset({"secret"}), 2),
              CredentialFlags("application", frozenset({"certificate", "secret"}), 1),
              CredentialFlags("application", frozenset({"federated"}), 1),
              CredentialFlags("identity", frozenset(), 4),
              CredentialFlags("application", frozenset(), 5)]
    s = score_of({"secret": 30, "managed_identity": 70}, groups, 30 * DAY)
    assert s.workloads.counts == {"secret": 3, "certificate": 0, "federated": 1, "managed_identity": 4}
    assert s.workloads.total == 8 and s.without_credentials == 5
    assert s.signins.shares["secret"] == pytest.approx(0.3) and s.signins.shares["certificate"] == 0.0
    assert s.index == round(100 * (0 * 3 + 2 * 1 + 3 * 4) / (3 * 8))
    assert score_of({}, [], 30 * DAY).index == 0
