"""The credential ladder as data and rules: each workload's rung and the risk factors of its credentials.

The ladder (docs/ladder.md): a **secret** is something that can be copied; a **certificate** keeps its
private key on the workload's host; a **federated** credential moves nothing secret at all (another
issuer's short-lived token stands for the workload); a **managed identity** needs not even that
configuration, the host's Keyless agent authenticates for it. A workload stands on the rung of the
*weakest* credential that still works: an application with a certificate and a live secret can still
be impersonated with the secret, so it has not climbed until the secret is gone.

Everything here is pure: `keyless.directory.posture` gathers the facts (one aggregated query per kind
of fact, `keyless.store.posture`) and `keyless.directory.advice` turns an assessment into commands.
No fact ever holds a secret value: a secret is known by its id and hint (catalog O14).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from keyless.domain.credentials import Credential

# The ladder's names, re-exported: the rules speak of them, and callers may spell them from here.
from keyless.domain.ladder import RISKS as RISKS
from keyless.domain.ladder import RUNGS as RUNGS
from keyless.domain.ladder import Risk as Risk
from keyless.domain.ladder import Rung as Rung

_HEIGHT: dict[str, int] = {"none": 0, "secret": 1, "certificate": 2, "federated": 3, "managed_identity": 4}
WorkloadKind = Literal["application", "identity"]
DAY = 86400.0


@dataclass(frozen=True)
class Thresholds:
    """Where a risk begins (docs/ladder.md, "Risk factors"). A secret living longer than the tenant's
    default lifetime (180 days) is long-lived, and one not replaced for 90 days is unrotated (NIST SP
    800-57 cryptoperiods; Entra recommends far less than its 2-year maximum); 30 days' notice of an
    expiry matches the expiry notifications (issue 13)."""

    long_lived_secret: float = 180 * DAY  # a secret whose whole lifetime exceeds this
    rotation_age: float = 90 * DAY  # the newest secret is older than this: never rotated since
    many_addresses: int = 3  # a secret used from more distinct addresses than this in the window
    expiring_soon: float = 30 * DAY
    unused: float = 90 * DAY  # created longer ago than this and not used for as long
    window: float = 30 * DAY  # the sign-in log window of addresses, the score and federated use


@dataclass(frozen=True)
class Usage:
    """A credential's successful sign-ins in the window (from the sign-in log)."""

    signins: int = 0
    sources: tuple[str, ...] = ()  # distinct source addresses, most used first
    last_at: float | None = None


class SignInUsage:
    """Sign-in usage per credential and per workload, from the sign-in log grouped by (client,
    credential, source) over the window."""

    def __init__(self) -> None:
        self.by_credential: dict[str, dict[str, int]] = defaultdict(dict)
        self.by_client: dict[str, dict[str, int]] = defaultdict(dict)
        self.last_credential: dict[str, float] = {}
        self.last_client: dict[str, float] = {}
        # Answers are computed once (the usage is cached and serves every page of many reports).
        self._credential_usage: dict[str, Usage] = {}
        self._client_usage: dict[str, tuple[int, tuple[str, ...], float | None]] = {}

    def add(self, client_id: str, credential_id: str | None, source: str | None, n: int, last: float) -> None:
        src = source or ""
        per_client = self.by_client[client_id]
        per_client[src] = per_client.get(src, 0) + n
        self.last_client[client_id] = max(last, self.last_client.get(client_id, 0.0))
        if credential_id:
            per_cred = self.by_credential[credential_id]
            per_cred[src] = per_cred.get(src, 0) + n
            self.last_credential[credential_id] = max(last, self.last_credential.get(credential_id, 0.0))

    @staticmethod
    def _sources(counts: Mapping[str, int]) -> tuple[str, ...]:
        return tuple(s for s, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if s)

    def of_credential(self, credential_id: str) -> Usage:
        found = self._credential_usage.get(credential_id)
        if found is None:
            counts = self.by_credential.get(credential_id, {})
            found = Usage(sum(counts.values()), self._sources(counts), self.last_credential.get(credential_id))
            self._credential_usage[credential_id] = found
        return found

    def of_client(self, client_id: str) -> tuple[int, tuple[str, ...], float | None]:
        found = self._client_usage.get(client_id)
        if found is None:
            counts = self.by_client.get(client_id, {})
            found = sum(counts.values()), self._sources(counts), self.last_client.get(client_id)
            self._client_usage[client_id] = found
        return found


@dataclass(frozen=True)
class AssessedCredential:
    """One credential of a workload with what its assessment needs: its use in the window and its
    flags (renamed from `CredentialFacts`, a name `keyless.domain.policies` keeps for its own rules)."""

    credential: Credential
    usage: Usage = Usage()
    from_internal_ca: bool | None = None  # certificates only: issued by this installation's CA
    broad_subject: bool = False  # federated only: a subject pattern wider than one repo/namespace
    leaked: bool = False  # reported leaked (`keyless scan --revoke`, the leak-report endpoint)


@dataclass(frozen=True)
class LeakNote:
    """A leak report about one of the workload's secrets (`keyless scan --revoke`, docs/leaks.md)."""

    secret_id: str
    hint: str
    location: str
    reported_at: float


@dataclass(frozen=True)
class Workload:
    """An application or managed identity with the facts its assessment needs."""

    client_id: str
    display_name: str
    kind: WorkloadKind
    created_at: float
    credentials: tuple[AssessedCredential, ...] = ()
    identity_kind: str | None = None  # "system" | "user" for managed identities
    hosts: tuple[str, ...] = ()  # managed identities: the hosts that may act for it (names)
    signins: int = 0  # successful sign-ins in the window, any credential
    sources: tuple[str, ...] = ()  # distinct source addresses in the window, most used first
    last_signin_at: float | None = None
    resource: bool = False  # has an identifier URI: other workloads get tokens for it
    leaks: tuple[LeakNote, ...] = ()


@dataclass(frozen=True)
class RiskFinding:
    """One risk factor, of one credential (`credential_id`) or of the whole workload (None)."""

    risk: Risk
    message: str
    credential_id: str | None = None


@dataclass(frozen=True)
class Assessment:
    workload: Workload
    rung: Rung
    findings: tuple[RiskFinding, ...] = ()
    # The addresses the workload signs in from that belong to hosts running the Keyless agent, by host
    # name; filled by `assess` from the tenant's host map.
    agent_hosts: tuple[str, ...] = ()
    unknown_sources: tuple[str, ...] = ()


def height(rung: str) -> int:
    return _HEIGHT.get(rung, 0)


def rung_of_kinds(kind: WorkloadKind, live_kinds: frozenset[str]) -> Rung:
    """The rung of a workload from the kinds of its working credentials: a managed identity is on the
    top rung whatever it also trusts; otherwise the weakest working kind (a live secret keeps an
    application on the secret rung however good its other credentials are)."""
    if kind == "identity":
        return "managed_identity"
    rungs: tuple[Rung, ...] = ("secret", "certificate", "federated")
    for rung in rungs:
        if rung in live_kinds:
            return rung
    return "none"


def _live(c: AssessedCredential, now: float) -> bool:
    return c.credential.state(now) in ("active", "not_yet_valid")


def rung_of(workload: Workload, now: float) -> Rung:
    return rung_of_kinds(workload.kind, frozenset(c.credential.kind for c in workload.credentials if _live(c, now)))


def _days(seconds: float) -> str:
    return f"{max(0, int(seconds // DAY))} days"


def credential_findings(c: AssessedCredential, newest_secret_at: float | None, now: float,
                        th: Thresholds) -> list[RiskFinding]:
    """The risk factors of one credential (a pure function of its facts)."""
    cred, out = c.credential, []

    def add(risk: Risk, message: str) -> None:
        out.append(RiskFinding(risk, message, cred.id))

    if c.leaked:
        add("leaked", "reported leaked: anyone holding the copy can sign in as this workload until it is revoked")
    if cred.kind == "secret":
        if cred.expires_at is not None and cred.expires_at - cred.created_at > th.long_lived_secret:
            add("long_lived_secret", f"valid for {_days(cred.expires_at - cred.created_at)} "
                                     f"(more than {_days(th.long_lived_secret)})")
        if now - cred.created_at > th.rotation_age and newest_secret_at == cred.created_at:
            add("secret_never_rotated", f"created {_days(now - cred.created_at)} ago and never rotated since")
        if len(c.usage.sources) > th.many_addresses:
            add("secret_many_addresses", f"used from {len(c.usage.sources)} addresses in the last "
                                         f"{_days(th.window)}: copied to several places")
    if cred.kind == "certificate" and c.from_internal_ca is False:
        add("certificate_not_internal_ca", "not issued by this installation's CA: its lifetime and key "
                                           "handling are outside Keyless's control")
    if cred.expires_within(now, th.expiring_soon) and cred.expires_at is not None:
        add("expiring_soon", f"expires in {_days(cred.expires_at - now)}")
    if cred.kind == "federated" and c.broad_subject:
        add("broad_federation_subject", "its subject pattern trusts more than one repository or namespace")
    if _unused(c, now, th):
        by_window = cred.kind == "federated" and cred.last_used_at is None
        add("unused", f"not used for {_days(th.window) if by_window else _days(th.unused)}: "
                      f"remove it if nothing needs it")
    return out


def _unused(c: AssessedCredential, now: float, th: Thresholds) -> bool:
    """Created long enough ago and not used since, by `last_used_at` (recorded for every kind since
    migration 0014); a federated credential with none recorded (unused, or last used before 0014) is
    judged by the sign-in window."""
    cred = c.credential
    if cred.state(now) != "active" or now - cred.created_at <= th.unused:
        return False
    if cred.kind == "federated" and cred.last_used_at is None:
        return c.usage.signins == 0
    last = max(cred.last_used_at or 0.0, c.usage.last_at or 0.0)
    return now - last > th.unused


def workload_findings(w: Workload, now: float, th: Thresholds) -> list[RiskFinding]:
    live_secrets = [c for c in w.credentials if c.credential.kind == "secret" and c.credential.state(now) == "active"]
    out: list[RiskFinding] = []
    if len(live_secrets) > 1:
        out.append(RiskFinding("several_active_secrets", f"{len(live_secrets)} active secrets: each is a copy to lose; "
                                                     f"keep one only while rotating"))
    live = {c.credential.id for c in w.credentials}
    for leak in w.leaks:
        if leak.secret_id not in live:  # revoked by the report; a live one is the credential's own finding
            out.append(RiskFinding(
                "leaked", f"secret {leak.hint}... was reported leaked ({leak.location}) and revoked: "
                          f"copies of secrets get out; climb to a credential that cannot leak", leak.secret_id))
    if w.kind == "identity" and w.signins == 0 and now - w.created_at > th.unused:
        out.append(RiskFinding("unused", f"no sign-in in the last {_days(th.window)}"))
    return out


def assess(w: Workload, host_of: Mapping[str, str], now: float, th: Thresholds = Thresholds()) -> Assessment:
    """The workload's rung and risk factors; `host_of` maps a source address to the name of the host
    whose Keyless agent signed in from it (the evidence that a workload there could use a managed
    identity instead of its credential)."""
    secrets = [c.credential.created_at for c in w.credentials if c.credential.kind == "secret"]
    newest = max(secrets) if secrets else None
    findings = workload_findings(w, now, th)
    for c in w.credentials:
        findings += credential_findings(c, newest, now, th)
    agent_hosts = tuple(dict.fromkeys(host_of[s] for s in w.sources if s in host_of))
    unknown = tuple(s for s in w.sources if s not in host_of)
    return Assessment(w, rung_of(w, now), tuple(findings), agent_hosts, unknown)


@dataclass(frozen=True)
class Shares:
    """Counts per rung and their shares (0..1) of the total; `total` 0 gives every share 0."""

    counts: Mapping[str, int]
    total: int = 0
    shares: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> Shares:
        full: dict[str, int] = {r: int(counts.get(r, 0)) for r in RUNGS}
        total = sum(full.values())
        return cls(full, total, {r: (n / total if total else 0.0) for r, n in full.items()})


@dataclass(frozen=True)
class Score:
    """The tenant's standing: how its sign-ins in the window and its workloads spread over the rungs,
    and one number, the mean height of the workloads on the ladder (0 all secrets .. 100 all managed
    identities), so progress shows as a rising figure."""

    signins: Shares
    workloads: Shares
    without_credentials: int
    window_days: int

    @property
    def index(self) -> int:
        total = self.workloads.total
        if not total:
            return 0
        climbed = sum((height(r) - 1) * n for r, n in self.workloads.counts.items())
        return round(100 * climbed / (3 * total))


@dataclass(frozen=True)
class CredentialFlags:
    """One group of workloads with the same kinds of working credential (what the score needs)."""

    kind: WorkloadKind
    kinds: frozenset[str]
    count: int


def score_of(signins_by_rung: Mapping[str, int], groups: Sequence[CredentialFlags], window: float) -> Score:
    counts: dict[str, int] = {}
    for g in groups:
        rung = rung_of_kinds(g.kind, g.kinds)
        counts[rung] = counts.get(rung, 0) + g.count
    return Score(Shares.of(signins_by_rung), Shares.of(counts), counts.get("none", 0), int(window // DAY))


@dataclass(frozen=True)
class SignInWindow:
    """What a report needs from the tenant's sign-in log over the window, read in one scan: each
    workload's and credential's use, the host map (source address -> the host whose Keyless agent signed
    in from it; an address several hosts share is left out, it proves nothing) and the score's
    successful sign-ins by rung."""

    usage: SignInUsage
    host_of: Mapping[str, str]
    by_rung: Mapping[str, int]


class IssuerCheck(Protocol):
    """Whether a DER certificate was issued by the installation's CA; `ca_thumbprint` (the CA
    certificate's x5t#S256) names the CA, since a kept verdict holds for that CA only."""

    ca_thumbprint: str

    def __call__(self, der: bytes) -> bool: ...


@dataclass(frozen=True)
class PostureFacts:
    """One page of workloads: with the tenant's host map, the input of `assess`."""

    workloads: tuple[Workload, ...]
    next_after: str | None  # the last client id of the page when more may follow


class PostureStore(Protocol):
    async def posture_facts(self, tenant_id: str, *, usage: SignInUsage, after: str | None, limit: int,
                            client_id: str | None = None,
                            internal_ca: IssuerCheck | None = None) -> PostureFacts:
        """A page of workloads (by client id, after `after`) with their credentials, and their use
        from `usage`, in a fixed number of aggregated queries whatever the page size. A certificate's
        "issued by the CA" verdict is asked of `internal_ca` once and kept with the certificate."""
        ...

    async def signin_window(self, tenant_id: str, since: float) -> SignInWindow:
        """The tenant's successful sign-ins since `since`: usage, host map and sign-ins by rung."""
        ...

    async def credential_flags(self, tenant_id: str, now: float) -> Sequence[CredentialFlags]: ...
    async def signins_by_rung(self, tenant_id: str | None, since: float) -> Mapping[str, int]: ...
