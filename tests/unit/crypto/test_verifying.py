"""The client-assertion fast paths give PyJWT's answers (keyless.crypto.verifying, issue 18)."""

from __future__ import annotations

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from keyless.crypto.keys import generate, public_of
from keyless.crypto.verifying import p256_public, verify_rs256


def test_p256_public_is_is_p256_public_remembered() -> None:
    key = generate("ES256")
    public = public_of(key)
    for _ in range(2):  # the second answer is the remembered one
        assert p256_public(public)
        assert not p256_public(key)
        assert not p256_public(public_of(generate("RS256")))
        assert not p256_public(ec.generate_private_key(ec.SECP384R1()).public_key())
        assert not p256_public(ec.generate_private_key(ec.SECP256K1()).public_key())


def test_verify_rs256_agrees_with_pyjwt_on_good_forged_and_malformed_signatures() -> None:
    """True for a good signature; false for another message, a flipped bit, another key's signature,
    a short or long signature, an empty one, a key that is not RSA."""
    algorithm = jwt.algorithms.get_default_algorithms()["RS256"]
    key, other = generate("RS256"), generate("RS256")
    public = public_of(key)
    good = algorithm.sign(b"input", key)
    cases = [(b"input", good), (b"inpuT", good), (b"input", bytes([good[0] ^ 1]) + good[1:]),
             (b"input", algorithm.sign(b"input", other)), (b"input", good[:-1]), (b"input", good + b"\0"),
             (b"input", b"")]
    for data, signature in cases:
        assert verify_rs256(public, data, signature) is algorithm.verify(data, public, signature)
    assert verify_rs256(public, b"input", good)
    assert not verify_rs256(public_of(generate("ES256")), b"input", good)
