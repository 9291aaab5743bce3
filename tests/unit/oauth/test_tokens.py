"""Management API tokens, and only they, name the credential the caller signed in with (issue 20 item 3):
the audit log can say which secret or certificate made a change, and no other resource server learns
which of a client's credentials was used."""

from __future__ import annotations

import base64
import os

from keyless.domain.model import MANAGEMENT_URI, Application
from keyless.oauth import tokens
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


def test_token_ids_are_128_random_bits_never_repeated() -> None:
    """Token ids come from a pool filled by the kernel's CSPRNG: 16 bytes each, each handed out once,
    across pool refills too."""
    ids = [tokens.new_token_id() for _ in range(3000)]  # several refills of the 256-id pool
    assert len(set(ids)) == len(ids)
    for token_id in ids[:50]:
        assert len(base64.urlsafe_b64decode(token_id + "==")) == 16


def test_a_forked_child_never_hands_out_the_parents_token_ids() -> None:
    tokens.new_token_id()  # the parent's pool now holds unused bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, "\n".join(tokens.new_token_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    parent = {tokens.new_token_id() for _ in range(10)}
    assert len(child) == 10 and not child & parent
