"""Which verifier a client assertion goes to: certificate assertions keep their own path (and answers)."""

from __future__ import annotations

import pytest

from keyless.oauth.client_auth.federated import is_federated

APP = "3f1c2b9e-0d8a-4c55-9a7e-2b1f0c3d4e5f"
OTHER = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


@pytest.mark.parametrize(("claims", "client_id", "federated"), [
    ({"iss": "https://token.actions.githubusercontent.com", "sub": "repo:a/b:ref:refs/heads/main"}, APP, True),
    ({"iss": APP, "sub": APP}, APP, False),  # certificate assertion
    ({"iss": OTHER, "sub": OTHER}, APP, False),  # another client's assertion: R-CA-2's client_id mismatch
    ({"iss": "https://issuer.example", "sub": "x"}, None, False),  # federation needs the client_id
    ({"iss": 7, "sub": "x"}, APP, False),
    ({"sub": "x"}, APP, False),
])
def test_routing(claims: dict[str, object], client_id: str | None, federated: bool) -> None:
    assert is_federated(claims, client_id) is federated
