"""Console login codes (catalog O10): sealed under the KEK, bound to one credential and its roles,
refused after 60 seconds, refused when altered in any byte, and high-entropy (no two alike)."""

from __future__ import annotations

import pytest

from keyless.clock import FrozenClock
from keyless.crypto import aead
from keyless.server.console.sessions import CODE_LIFETIME, Binding, LoginCodes, LoginRefused, csrf_ok, csrf_token

BINDING = Binding(tenant_id="t-1", client_id="c-1", object_id="o-1", roles=frozenset({"Keyless.Reader"}),
                  credential_id="s-1", credential_type="secret")


def test_a_code_opens_to_its_binding_within_its_lifetime() -> None:
    clock = FrozenClock(1_000_000.0)
    codes = LoginCodes(aead.new_key(), clock)
    code, expires = codes.issue(BINDING)
    assert expires == 1_000_000.0 + CODE_LIFETIME <= 1_000_000.0 + 60
    clock.advance(CODE_LIFETIME - 1)
    binding, nonce, _ = codes.open(code)
    assert binding == BINDING  # the credential the requester signed in with included (issue 20 item 3)
    assert len(nonce) == 32  # 128 bits, the single-use key


def test_an_expired_code_is_refused() -> None:
    clock = FrozenClock(1_000_000.0)
    codes = LoginCodes(aead.new_key(), clock)
    code, _ = codes.issue(BINDING)
    clock.advance(CODE_LIFETIME)
    with pytest.raises(LoginRefused):
        codes.open(code)


def test_a_code_from_another_installation_is_refused() -> None:
    clock = FrozenClock()
    code, _ = LoginCodes(aead.new_key(), clock).issue(BINDING)
    with pytest.raises(LoginRefused):
        LoginCodes(aead.new_key(), clock).open(code)


@pytest.mark.parametrize("position", [0, 5, 40, -3])
def test_an_altered_code_is_refused(position: int) -> None:
    """Editing the roles (or anything) inside a code breaks its authentication tag. (Single use is
    keyed on the sealed nonce, not on the code's spelling, so a second base64 spelling of the same
    bytes is no second use.)"""
    codes = LoginCodes(aead.new_key(), FrozenClock())
    code, _ = codes.issue(BINDING)
    flipped = "A" if code[position] != "A" else "B"
    altered = code[:position] + flipped + code[position + 1:]
    with pytest.raises(LoginRefused):
        codes.open(altered)


@pytest.mark.parametrize("junk", ["", "short", "x" * 5000, "!!!!" * 20, "%00" * 20])
def test_junk_is_refused_with_the_same_error(junk: str) -> None:
    with pytest.raises(LoginRefused, match="not valid"):
        LoginCodes(aead.new_key(), FrozenClock()).open(junk)


def test_codes_are_never_alike() -> None:
    codes = LoginCodes(aead.new_key(), FrozenClock())
    assert len({codes.issue(BINDING)[0] for _ in range(200)}) == 200


def test_the_csrf_token_belongs_to_one_session() -> None:
    assert csrf_ok("cookie-a", csrf_token("cookie-a"))
    assert not csrf_ok("cookie-b", csrf_token("cookie-a"))
    assert not csrf_ok("cookie-a", None)
    assert not csrf_ok("cookie-a", "")


def test_a_code_for_a_token_naming_no_credential_opens_without_one() -> None:
    """Tokens issued before the credential claims existed name none: the code says so, not a guess."""
    codes = LoginCodes(aead.new_key(), FrozenClock())
    bare = Binding(tenant_id="t-1", client_id="c-1", object_id="o-1", roles=frozenset({"Keyless.Admin"}))
    binding, _, _ = codes.open(codes.issue(bare)[0])
    assert binding == bare and binding.credential_id is None and binding.credential_type is None
