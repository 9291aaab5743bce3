"""What a validator costs before and besides its signature checks (issue 18 item 4, docs/verify.md
"Performance"): a validator over a fixed key set never builds an HTTP client, and the claim checks
still refuse expired and not-yet-valid tokens after the dates are compared without re-parsing."""

from __future__ import annotations

import time

import pytest

from keyless.crypto.keys import generate, public_of
from keyless.jose.jwk import key_id, public_jwk
from keyless.jose.jws import sign
from keyless.verify import InvalidToken, TokenValidator

ISS = "https://127.0.0.1:8443/t/v2.0"
AUD = "api://orders"


def _token(key: object, kid: str, **over: object) -> str:
    now = int(time.time())
    claims = {"iss": ISS, "aud": AUD, "exp": now + 600, "iat": now, "nbf": now, "sub": "s", "client_id": "c",
              "jti": "j", "idtyp": "app", **over}
    return sign(claims, key, alg="ES256", kid=kid, typ="at+jwt")  # type: ignore[arg-type]


def test_a_fixed_key_set_validator_never_builds_an_http_client() -> None:
    key = generate("ES256")
    kid = key_id(public_of(key))
    v = TokenValidator.from_jwks({"keys": [public_jwk(public_of(key), "ES256")]}, issuer=ISS, audience=AUD,
                                 algorithms=["ES256"])
    assert v.validate(_token(key, kid)).client_id == "c"
    assert v._client is None  # no trust store loaded for a validator that never fetches
    v.close()


@pytest.mark.parametrize(("over", "reason"), [
    ({"exp": int(time.time()) - 120}, "expired"),
    ({"nbf": int(time.time()) + 3600}, "nbf in the future"),
    ({"iat": float(int(time.time()) + 3600)}, "iat in the future"),
    ({"exp": 2.0**53}, "exp is out of range"),
])
def test_dates_are_still_checked(over: dict[str, object], reason: str) -> None:
    key = generate("ES256")
    kid = key_id(public_of(key))
    v = TokenValidator.from_jwks({"keys": [public_jwk(public_of(key), "ES256")]}, issuer=ISS, audience=AUD,
                                 algorithms=["ES256"])
    with pytest.raises(InvalidToken) as err:
        v.validate(_token(key, kid, **over))
    assert reason in err.value.reason
