"""Management API tokens, and only they, name the credential the caller signed in with (issue 20 item 3):
the audit log can say which secret or certificate made a change, and no other resource server learns
which of a client's credentials was used."""

from __future__ import annotations

from keyless.domain.model import MANAGEMENT_URI, Application
from keyless.oauth.tokens import CREDENTIAL_ID_CLAIM, CREDENTIAL_TYPE_CLAIM, credential_claims


def _resource(uri: str | None) -> Application:
    return Application(client_id="c0ffee00-0000-4000-8000-000000000001", tenant_id="t", display_name="r",
                       object_id="o", created_at=0.0, identifier_uri=uri)


def test_management_tokens_carry_the_credential_id_and_kind() -> None:
    claims = credential_claims(_resource(MANAGEMENT_URI), "secret-id", "secret")
    assert claims == {CREDENTIAL_ID_CLAIM: "secret-id", CREDENTIAL_TYPE_CLAIM: "secret"}


def test_tokens_for_other_resources_name_no_credential() -> None:
    assert credential_claims(_resource("api://orders"), "secret-id", "secret") == {}
    assert credential_claims(_resource(None), "secret-id", "secret") == {}
