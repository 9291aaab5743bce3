"""What the scheduled scans notice about credentials (docs/notifications.md, "Scheduled scans").

Pure rules over the one credential model (`keyless.domain.credentials.Credential`), so every kind of
every owner is scanned alike: a credential **expiring** within one of the configured thresholds
(30, 7 and 1 days by default; one notice per threshold, the tightest one crossed), one that has
**expired**, and one **unused** for N days (never used: N days after it was made). Each notice has a
dedupe key naming the credential and the fact, so scanning again — on this replica or another — sends
nothing new; a credential used again and then idle again earns a new unused notice.

Last use is recorded for every kind, in batches off the token path (`keyless.server.signin_log`).

The dedupe keys are the outbox's memory that a notice was sent, so they are kept only as long as they
can matter (`forgettable`): a scan's key while its fact still holds, and for a while after.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from keyless.domain.credentials import Credential
from keyless.domain.events import (
    AGENT_SILENT,
    CREDENTIAL_EXPIRED,
    CREDENTIAL_EXPIRING,
    CREDENTIAL_UNUSED,
    POLICY_VIOLATION,
    Event,
)
from keyless.domain.identities import Host

DAY = 86400.0
USE_TRACKED = frozenset({"secret", "certificate", "federated"})
# Dedupe keys of the scan's own notices (here, and reaping's in `keyless.directory.reaping`) ...
SCAN_KEYS = ("expiring:", "expired:", "unused:", "agent-silent:", "reap-warning:", "reap-audit:", "reap-audit-delete:")
# ... and of the sign-in policy check's daily notices (`keyless.oauth.policy_check`: the key names its day).
DAILY_KEYS = (f"{POLICY_VIOLATION}:sign_in:",)
MEMORY_MARGIN = 7 * DAY


@dataclass(frozen=True)
class NoticeRules:
    expiry_days: tuple[float, ...] = (30, 7, 1)
    unused_days: float = 90  # 0: no unused notices


def credential_data(c: Credential, owner_name: str | None = None) -> dict[str, object]:
    """What an event says about a credential: ids, names, times and the label the CLI shows (a
    secret's hint, a certificate's thumbprint, a federated credential's issuer and subject)."""
    return {"credential_id": c.id, "kind": c.kind, "owner_kind": c.owner.kind, "owner_id": c.owner.id,
            "owner_name": owner_name, "display_name": c.display_name, "label": c.label,
            "created_at": c.created_at, "expires_at": c.expires_at, "last_used_at": c.last_used_at}


def _event(kind: str, tenant_id: str, now: float, c: Credential, names: Mapping[str, str], dedupe: str,
           **extra: object) -> Event:
    return Event(kind, tenant_id, now, c.id, {**credential_data(c, names.get(c.owner.id)), **extra}, dedupe=dedupe)


def notices(tenant_id: str, credentials: Iterable[Credential], now: float, rules: NoticeRules,
            names: Mapping[str, str] | None = None) -> Sequence[Event]:
    """The notices due for `credentials` at `now`; `names` maps owner ids to names for the payload."""
    names = names or {}
    found: list[Event] = []
    for c in credentials:
        state = c.state(now)
        if state == "revoked":
            continue
        if state == "expired" and c.expires_at is not None:
            found.append(_event(CREDENTIAL_EXPIRED, tenant_id, now, c, names, f"expired:{c.id}:{c.expires_at:.0f}"))
            continue
        if state == "active" and c.expires_at is not None:
            crossed = [d for d in rules.expiry_days if c.expires_at - now <= d * DAY]
            if crossed:
                days = min(crossed)
                found.append(_event(CREDENTIAL_EXPIRING, tenant_id, now, c, names,
                                    f"expiring:{days:g}:{c.id}:{c.expires_at:.0f}", days=days))
        if rules.unused_days > 0 and state == "active" and c.kind in USE_TRACKED:
            since = c.last_used_at if c.last_used_at is not None else c.created_at
            if now - since >= rules.unused_days * DAY:
                found.append(_event(CREDENTIAL_UNUSED, tenant_id, now, c, names,
                                    f"unused:{rules.unused_days:g}:{c.id}:{since:.0f}", days=rules.unused_days,
                                    never_used=c.last_used_at is None))
    return found


def silent_agents(tenant_id: str, hosts: Iterable[Host], credentials: Iterable[Credential], now: float,
                  minutes: float) -> Sequence[Event]:
    """`agent.silent` for each enrolled host whose agent has not called the server (enrollment, renewal
    or its regular poll, each recorded as its certificate's last use) for `minutes`; once per silence."""
    if minutes <= 0:
        return []
    heard: dict[str, float] = {}
    for c in credentials:
        if c.owner.kind == "host" and c.last_used_at is not None:
            heard[c.owner.id] = max(heard.get(c.owner.id, 0.0), c.last_used_at)
    found = []
    for h in hosts:
        if h.enrolled_at is None:
            continue
        last = max(heard.get(h.id, 0.0), h.enrolled_at)
        if now - last >= minutes * 60:
            found.append(Event(AGENT_SILENT, tenant_id, now, h.id,
                               {"host_id": h.id, "host_name": h.name, "last_seen_at": last, "minutes": minutes},
                               dedupe=f"agent-silent:{h.id}:{last:.0f}"))
    return found


def memory(rules: NoticeRules) -> float:
    """How long a scan's key outlives its fact: the longest expiry window plus a week, so a fact that
    flickers (a lease moving between replicas with other settings, a clock a little off) is not
    noticed twice."""
    return max((*rules.expiry_days, 1.0)) * DAY + MEMORY_MARGIN


def forgettable(remembered: Iterable[tuple[str, str, float]], live: Collection[str], now: float,
                rules: NoticeRules) -> list[str]:
    """Of the remembered (event id, dedupe key, time), the events whose key may be forgotten: a scan's
    notice whose fact no longer holds — its credential or host is gone, revoked, used or heard from
    again, or past that threshold; `live` holds every key the scan finds true now — and which is older
    than `memory(rules)`; a sign-in's daily policy notice two days on. What stays is bounded by what
    exists (a few keys per credential and host) and what happened lately."""
    out = []
    for event_id, key, time in remembered:
        if key.startswith(SCAN_KEYS):
            if key not in live and now - time >= memory(rules):
                out.append(event_id)
        elif key.startswith(DAILY_KEYS) and now - time >= 2 * DAY:
            out.append(event_id)
    return out
