"""The next step up the ladder, as commands (docs/ladder.md).

`next_step` picks the one step that moves a workload up, from what the assessment knows: a leaked
credential is revoked first; a workload that already has a better credential drops the weaker one;
one that signs in only from hosts running the Keyless agent moves to a user-assigned managed identity
on those hosts; otherwise a secret becomes a certificate, and a certificate becomes federation (CI,
Kubernetes) or, once the agent runs on the host, a managed identity. `fix` gives each risk factor its
own commands.

Every command is printed for an operator to paste into a shell, and some values in it come from the
directory (names an admin chose, hosts): each is quoted with `shlex.quote`, and a suggested identity
name is reduced to the characters identity names allow, so no stored value can inject into a shell.
"""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass

from keyless.domain.posture import AssessedCredential, Assessment, RiskFinding, height

GUIDE = "docs/ladder.md"
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Step:
    summary: str
    commands: tuple[str, ...]
    guide: str  # the section of the ladder guide that explains the step


@functools.lru_cache(maxsize=1 << 16)
def q(value: str) -> str:
    """`shlex.quote`, remembered: a report quotes each client id and name several times."""
    return shlex.quote(value)


def identity_name(display_name: str, client_id: str) -> str:
    """A user-assigned identity name suggested from the application's name (identity names allow
    letters, digits, `.`, `_` and `-`, and must start with a letter or digit)."""
    name = _NOT_NAME.sub("-", display_name).strip("-._")[:128]
    return name or f"app-{client_id[:8]}"


def _live(a: Assessment, kind: str, now: float) -> list[AssessedCredential]:
    return [c for c in a.workload.credentials
            if c.credential.kind == kind and c.credential.state(now) in ("active", "not_yet_valid")]


def _revoke(a: Assessment, c: AssessedCredential) -> str:
    cid, cred = q(a.workload.client_id), c.credential
    if cred.kind == "secret":
        return f"keyless secret revoke {cid} {q(cred.id)}"
    if cred.kind == "certificate":
        return f"keyless cert revoke {cid} {q(cred.id)}"
    if a.workload.kind == "identity":
        return f"keyless federation remove --identity {cid} {q(cred.display_name)}"
    return f"keyless federation remove {cid} {q(cred.display_name)}"


def _to_identity(a: Assessment, weaker: list[AssessedCredential]) -> Step:
    w = a.workload
    name = q(identity_name(w.display_name, w.client_id))
    hosts = a.agent_hosts
    commands = [f"keyless identity create {name}"]
    commands += [f"keyless identity assign {name} --host {q(h)}" for h in hosts]
    commands += [f"keyless identity bind {name} --host {q(h)} --uid <service-user>" for h in hosts]
    commands += [_revoke(a, c) for c in weaker]
    where = ", ".join(hosts)
    several = "s" if len(hosts) > 1 else ""
    runs = "run" if len(hosts) > 1 else "runs"
    return Step(
        f"signs in only from host{several} {where}, which {runs} the Keyless agent: create a user-assigned "
        f"identity, assign and bind it there, point the workload at the agent, then remove the "
        f"{weaker[0].credential.kind if weaker else 'credential'}",
        tuple(commands), f"{GUIDE}#to-a-managed-identity",
    )


def next_step(a: Assessment, now: float) -> Step | None:
    """The one step that moves the workload up (None: nothing to climb, nothing leaked)."""
    w, rung = a.workload, a.rung
    leaked = [c for c in w.credentials if c.leaked and c.credential.state(now) != "revoked"]
    if leaked:
        return Step("a credential was reported leaked: revoke it now", tuple(_revoke(a, c) for c in leaked),
                    f"{GUIDE}#a-leaked-credential")
    if rung == "none" and w.leaks and w.kind == "application":
        return Step("its secret was revoked after a leak: give it a certificate rather than a new secret",
                    (f"keyless cert new {q(w.client_id)} --out <dir-on-the-workload-host>",),
                    f"{GUIDE}#a-leaked-credential")
    if rung in ("none", "managed_identity"):
        return None
    weaker = _live(a, rung, now)
    better = [c for c in w.credentials if height(c.credential.kind) > height(rung)
              and c.credential.state(now) == "active"]
    on_agent_hosts = bool(a.agent_hosts) and not a.unknown_sources
    if better:
        kind = better[0].credential.kind
        return Step(f"already has a {kind} credential: remove the {rung} credential{'s' if len(weaker) > 1 else ''} "
                    f"once the workload uses the {kind}",
                    tuple(_revoke(a, c) for c in weaker), f"{GUIDE}#finish-the-climb")
    if on_agent_hosts:
        return _to_identity(a, weaker)
    cid = q(w.client_id)
    if rung == "secret":
        return Step("replace the secret with a certificate whose private key never leaves the workload's host",
                    (f"keyless cert new {cid} --out <dir-on-the-workload-host>",
                     *(_revoke(a, c) for c in weaker)), f"{GUIDE}#from-a-secret-to-a-certificate")
    if rung == "certificate":
        foreign = [c for c in weaker if c.from_internal_ca is False]
        if foreign:
            return Step("replace the certificate with one from the Keyless CA (lifetime and key checked here)",
                        (f"keyless cert new {cid} --out <dir-on-the-workload-host>",
                         *(_revoke(a, c) for c in foreign)), f"{GUIDE}#certificates-from-the-keyless-ca")
        return Step("if it runs in CI or Kubernetes, trust that platform's tokens instead (federation); on a "
                    "server of your own, run the Keyless agent there and use a managed identity",
                    (f"keyless federation add {cid} --name <name> --issuer <issuer-url> "
                     f"--subject <exact-subject>",
                     "keyless host add <host>", *(_revoke(a, c) for c in weaker)), f"{GUIDE}#to-federation")
    broad = [c for c in weaker if c.broad_subject]
    if broad:
        return Step("narrow the federated subject to one repository or namespace",
                    tuple(x for c in broad for x in (
                        _revoke(a, c),
                        f"keyless federation add {cid} --name {q(c.credential.display_name)} --issuer "
                        f"{q(c.credential.label.split(' ', 1)[0])} --subject <exact-subject>")),
                    f"{GUIDE}#narrow-a-federated-subject")
    return None


def fix(a: Assessment, finding: RiskFinding, now: float, step: Step | None) -> tuple[str, ...]:
    """Commands that remove one risk factor (`step`: the workload's `next_step`, the fix of the risks
    that only climbing removes)."""
    w = a.workload
    c = next((x for x in w.credentials if x.credential.id == finding.credential_id), None)
    cid = q(w.client_id)
    if finding.risk == "several_active_secrets":
        live = sorted(_live(a, "secret", now), key=lambda x: x.credential.created_at)
        return tuple(_revoke(a, x) for x in live[:-1])
    if finding.risk == "unused" and c is None:
        return (f"keyless identity delete {q(w.display_name)}",) if w.kind == "identity" else ()
    if c is None:
        return ()
    if finding.risk in ("leaked", "unused"):
        return (_revoke(a, c),)
    if finding.risk == "expiring_soon" and c.credential.kind == "secret":
        return (f"keyless secret add {cid} --expires-in 90d", _revoke(a, c))
    if finding.risk in ("expiring_soon", "certificate_not_internal_ca") and c.credential.kind == "certificate":
        return (f"keyless cert new {cid} --out <dir-on-the-workload-host>", _revoke(a, c))
    return step.commands if step is not None else ()
