"""The federated-credential dry run ("would this token be accepted, and why not"), shared by the
management API (`POST …/federated-credentials/test`) and the web console: it runs the token
endpoint's own checks (`federated.examine`, the one policy function, E09) without consuming
anything and explains the outcome per credential — which one matched, or exactly which check failed
where. The caller needs Keyless.Admin, since it makes the server fetch issuer metadata."""

from __future__ import annotations

from typing import Any

from keyless.directory.errors import Invalid
from keyless.domain.credentials import Owner
from keyless.domain.federation import FederatedCredential
from keyless.domain.model import Tenant
from keyless.jose.hygiene import MalformedJose, split_compact
from keyless.oauth.client_auth import federated
from keyless.oauth.client_auth.private_key_jwt import MAX_ASSERTION
from keyless.oauth.federation import rules
from keyless.oauth.federation.issuers import IssuerKeys
from keyless.server.context import ServerContext


def _claim_summary(header: dict[str, Any], claims: dict[str, Any]) -> dict[str, Any]:
    """The claims that decide a federated sign-in; never the signature or the whole token."""
    shown: dict[str, Any] = {k: claims[k] for k in ("iss", "sub", "aud", "exp", "nbf", "iat") if k in claims}
    shown["jti_present"] = "jti" in claims
    shown["alg"] = header.get("alg")
    shown["kid"] = header.get("kid")
    return shown


def _verdicts(credentials: list[FederatedCredential], found: federated.Examination) -> list[dict[str, Any]]:
    by_id = {o.credential.id: o for o in found.outcomes}
    out = []
    for c in credentials:
        row: dict[str, Any] = {"id": c.id, "name": c.name, "issuer": c.issuer, "subject": c.subject,
                               "audience": c.audience}
        outcome = by_id.get(c.id)
        if c.issuer != found.issuer:
            row.update(result="issuer differs", passed=[])
        elif outcome is None:
            row.update(result=f"not evaluated: {federated.DESCRIPTIONS[found.failed or 'subject']}", passed=[])
        elif outcome.matched:
            row.update(result="match", passed=list(outcome.passed))
        else:
            row.update(result=f"{outcome.failed}: {rules.EXPLANATIONS[outcome.failed or 'subject']}",
                       passed=list(outcome.passed))
        out.append(row)
    return out


async def dry_run(ctx: ServerContext, tenant: Tenant, owner: Owner, token: str) -> dict[str, Any]:
    """Would `token` sign in as `owner`, and if not, which check fails where (nothing is consumed)."""
    assert ctx.federation is not None
    credentials = list(await ctx.federation.credentials(tenant, owner))
    try:
        header, claims = split_compact(token.strip(), max_length=MAX_ASSERTION)
    except MalformedJose as exc:
        raise Invalid("not_a_jwt", f"the token is not a compact signed JWT ({exc})") from None
    issuer_keys: IssuerKeys | None = ctx.issuer_keys
    assert issuer_keys is not None
    found = await federated.examine(token.strip(), header, claims, credentials, issuer_keys, ctx.clock)
    app = await ctx.directory.get_application(tenant.id, owner.id)
    result = "match" if found.failed is None else "no_match"
    if found.failed is None and app is not None and not app.enabled:
        result = "no_match"
    return {
        "result": result,
        "client_id": owner.id,
        "matched": found.matched.name if found.matched else None,
        "failed_check": found.failed,
        "explanation": (f"credential {found.matched.name!r} matches" if found.matched
                        else federated.DESCRIPTIONS[found.failed or "subject"]),
        "issuer_fetch_error": found.fetch_error,
        "application_enabled": app.enabled if app else None,
        "replay": found.matched.replay if found.matched else None,
        "token": _claim_summary(header, claims),
        "credentials": _verdicts(credentials, found),
    }


