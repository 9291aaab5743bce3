"""The scheduled scans' rules (keyless.directory.notices): expiring at each threshold once, expired
once, unused after N days (never used: N days after creation), for every kind and owner alike."""

from __future__ import annotations

from keyless.directory.notices import DAY, NoticeRules, forgettable, memory, notices
from keyless.domain.credentials import Credential, Owner
from keyless.domain.events import CREDENTIAL_EXPIRED, CREDENTIAL_EXPIRING, CREDENTIAL_UNUSED

NOW = 1_800_000_000.0
RULES = NoticeRules(expiry_days=(30, 7, 1), unused_days=90)


def cred(kind: str = "secret", *, expires_in: float | None = 100 * DAY, age: float = 10 * DAY,
         used_ago: float | None = 1 * DAY, owner: Owner = Owner("application", "app-1"),
         revoked: bool = False) -> Credential:
    return Credential(id=f"{kind}-1", kind=kind, owner=owner, display_name="ci", created_at=NOW - age,  # type: ignore[arg-type]
                      expires_at=None if expires_in is None else NOW + expires_in,
                      last_used_at=None if used_ago is None else NOW - used_ago,
                      revoked_at=NOW - 1 if revoked else None, label="kls_Ab3")


def kinds(found: object) -> list[tuple[str, object]]:
    return [(e.type, e.data.get("days")) for e in found]  # type: ignore[attr-defined]


def test_nothing_is_due_for_a_fresh_used_credential() -> None:
    assert notices("t", [cred()], NOW, RULES) == []


def test_the_tightest_threshold_crossed_is_noticed_with_a_key_per_threshold() -> None:
    assert kinds(notices("t", [cred(expires_in=29 * DAY)], NOW, RULES)) == [(CREDENTIAL_EXPIRING, 30)]
    assert kinds(notices("t", [cred(expires_in=5 * DAY)], NOW, RULES)) == [(CREDENTIAL_EXPIRING, 7)]
    [one_day] = notices("t", [cred(expires_in=3600)], NOW, RULES)
    [seven] = notices("t", [cred(expires_in=5 * DAY)], NOW, RULES)
    assert one_day.data["days"] == 1 and one_day.dedupe != seven.dedupe
    again = notices("t", [cred(expires_in=5 * DAY)], NOW + 60, RULES)[0]
    assert again.dedupe == seven.dedupe  # the same fact on the next scan: sent once


def test_expired_is_noticed_once_and_revoked_never() -> None:
    [expired] = notices("t", [cred(expires_in=-10)], NOW, RULES)
    assert expired.type == CREDENTIAL_EXPIRED and expired.subject == "secret-1"
    assert notices("t", [cred(expires_in=-10, revoked=True)], NOW, RULES) == []
    assert notices("t", [cred(expires_in=3 * DAY, used_ago=200 * DAY, revoked=True)], NOW, RULES) == []


def test_unused_for_n_days_and_never_used_since_creation() -> None:
    [idle] = notices("t", [cred(used_ago=91 * DAY, age=400 * DAY)], NOW, RULES)
    assert idle.type == CREDENTIAL_UNUSED and idle.data["never_used"] is False
    [never] = notices("t", [cred(used_ago=None, age=91 * DAY)], NOW, RULES)
    assert never.data["never_used"] is True
    assert notices("t", [cred(used_ago=None, age=89 * DAY)], NOW, RULES) == []
    # used again 10 days after the first notice, then idle for 90 days more: a new notice
    [idle_again] = notices("t", [cred(used_ago=91 * DAY - 10 * DAY, age=400 * DAY)], NOW + 100 * DAY, RULES)
    assert idle_again.dedupe != idle.dedupe
    assert notices("t", [cred(used_ago=91 * DAY, age=400 * DAY)], NOW + 5, RULES)[0].dedupe == idle.dedupe
    assert notices("t", [cred(used_ago=None, age=400 * DAY)], NOW, NoticeRules(unused_days=0)) == []


def test_every_kind_and_owner_kind_is_scanned() -> None:
    host_cert = cred("certificate", expires_in=2 * DAY, owner=Owner("host", "h-1"))
    identity_secret = cred(expires_in=2 * DAY, owner=Owner("identity", "mi-1"))
    federated = cred("federated", expires_in=None, used_ago=None, age=400 * DAY, owner=Owner("identity", "mi-1"))
    found = notices("t", [host_cert, identity_secret, federated], NOW, RULES, names={"h-1": "web-01"})
    assert [(e.type, e.data["owner_kind"], e.data["kind"]) for e in found] == [
        (CREDENTIAL_EXPIRING, "host", "certificate"), (CREDENTIAL_EXPIRING, "identity", "secret"),
        (CREDENTIAL_UNUSED, "identity", "federated")]
    assert found[0].data["owner_name"] == "web-01"
    assert all("secret" not in e.data for e in found)


def test_an_enrolled_host_whose_agent_went_quiet_is_noticed_once_per_silence() -> None:
    from keyless.directory.notices import silent_agents
    from keyless.domain.identities import Host

    enrolled = Host(id="h-1", tenant_id="t", name="web-01", system_client_id="c", created_at=0, enrolled_at=NOW - DAY)
    pending = Host(id="h-2", tenant_id="t", name="web-02", system_client_id="c2", created_at=0)
    heard = cred("certificate", owner=Owner("host", "h-1"), used_ago=30 * 60)
    assert silent_agents("t", [enrolled, pending], [heard], NOW, 60) == []
    [silent] = silent_agents("t", [enrolled, pending], [heard], NOW + 31 * 60, 60)
    assert (silent.type, silent.subject, silent.data["host_name"]) == ("agent.silent", "h-1", "web-01")
    assert silent_agents("t", [enrolled], [heard], NOW + 90 * 60, 60)[0].dedupe == silent.dedupe
    assert silent_agents("t", [enrolled], [heard], NOW + 31 * 60, 0) == []
    never_heard = silent_agents("t", [enrolled], [], NOW, 60)  # enrolled a day ago, silent since
    assert never_heard[0].data["last_seen_at"] == NOW - DAY


def test_a_notice_key_is_forgotten_once_its_fact_is_gone_and_old_and_a_daily_key_after_two_days() -> None:
    keep = memory(RULES)
    assert keep == 37 * DAY  # the longest window (30 days) plus a week
    remembered = [
        ("gone", "expiring:7:deleted-secret:1800000000", NOW - keep),  # its credential is gone, and old: forgotten
        ("young", "unused:90:used-again:1700000000", NOW - keep + 60),  # not live, but too young to forget
        ("live", "expired:still-here:1790000000", NOW - 400 * DAY),  # still expired and still there: kept
        ("daily", "policy.violation:sign_in:c1:abc:20833", NOW - 2 * DAY),  # its day is long over
        ("today", "policy.violation:sign_in:c1:abc:20834", NOW - 3600),
        ("other", "leak:whatever", NOW - 400 * DAY),  # not a scan's key: never judged here
    ]
    assert forgettable(remembered, {"expired:still-here:1790000000"}, NOW, RULES) == ["gone", "daily"]
