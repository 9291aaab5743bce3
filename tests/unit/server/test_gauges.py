"""The expiry gauges' arithmetic (keyless.server.gauges): the soonest expiry among *active*
credentials per tenant, kind and owner kind, and when the active signing key is due for rotation."""

from __future__ import annotations

from keyless.domain.credentials import Credential, Owner
from keyless.domain.model import SigningKey
from keyless.server.gauges import CREDENTIAL_EXPIRY, ExpiryReport, key_instants, publish, soonest

NOW = 1_800_000_000.0
APP = Owner("application", "c1")
HOST = Owner("host", "h1")


def _cred(kind: str, owner: Owner, expires_at: float | None, *, revoked_at: float | None = None,
          not_before: float | None = None) -> Credential:
    return Credential(id=f"{kind}-{expires_at}", kind=kind, owner=owner, display_name="", created_at=NOW - 10,  # type: ignore[arg-type]
                      expires_at=expires_at, revoked_at=revoked_at, not_before=not_before)


def test_the_soonest_active_expiry_per_kind_and_owner_ignores_expired_revoked_and_pending() -> None:
    creds = [
        _cred("secret", APP, NOW + 500), _cred("secret", APP, NOW + 100),
        _cred("secret", APP, NOW - 1),  # expired already: nothing to warn about
        _cred("secret", APP, NOW + 50, revoked_at=NOW - 5),  # revoked
        _cred("certificate", APP, NOW + 9000, not_before=NOW + 10),  # not yet valid
        _cred("certificate", HOST, NOW + 3600),
        _cred("federated", APP, None),  # no expiry of its own
    ]
    assert soonest("t1", creds, NOW) == {("t1", "secret", "application"): NOW + 100,
                                         ("t1", "certificate", "host"): NOW + 3600}


def _key(kid: str, created: float, activates: float) -> SigningKey:
    return SigningKey(kid=kid, tenant_id="t1", alg="ES256", public_jwk={}, sealed_private=b"", created_at=created,
                      activates_at=activates)


def test_a_signing_key_is_due_an_interval_after_it_began_unless_its_successor_waits() -> None:
    active = _key("k1", NOW - 1000, NOW - 900)
    assert key_instants([active], NOW, 86400) == (NOW - 900, NOW - 900 + 86400)
    assert key_instants([active], NOW, None) == (NOW - 900, None)  # no schedule: age only
    waiting = _key("k2", NOW - 1, NOW + 2)
    assert key_instants([active, waiting], NOW, 86400) == (NOW - 900, None)
    assert key_instants([], NOW, 86400) == (None, None)


def test_gauges_are_seconds_from_the_scrape_and_vanished_series_go() -> None:
    publish(ExpiryReport(credentials={("t9", "secret", "application"): NOW + 60}), NOW)
    assert CREDENTIAL_EXPIRY.labels("t9", "secret", "application")._value.get() == 60
    publish(ExpiryReport(credentials={}), NOW + 1)
    assert ("t9", "secret", "application") not in {s.labels.get("tenant") and (s.labels["tenant"], s.labels["kind"],
                                                   s.labels["owner"]) for m in CREDENTIAL_EXPIRY.collect()
                                                   for s in m.samples}
