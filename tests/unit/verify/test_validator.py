"""`TokenValidator` against a fixed key set: the J rows of the security catalog, the key binding, the
remembered-token memo and the unknown-kid refresh limiter (catalog J01-J19, I04, I05)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from keyless.crypto.keys import PrivateKey, generate, public_of, public_to_pem
from keyless.jose.jwk import key_id, public_jwk
from keyless.jose.jws import VerificationKey, sign, sign_with_headers, verify_signature
from keyless.verify import InvalidToken, KeysUnavailable, TokenTooLarge, TokenValidator
from tests.support.certs import b64u, b64u_json, new_cert

ISS = "https://127.0.0.1:8443/t/v2.0"
AUD = "api://orders"
NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"iss": ISS, "aud": AUD, "exp": int(NOW) + 600, "iat": int(NOW), "nbf": int(NOW),
                            "sub": "s", "client_id": "c", "jti": "j", "roles": ["Orders.Read"], "idtyp": "app"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


class Keys:
    def __init__(self) -> None:
        self.rsa: PrivateKey = generate("RS256")
        self.ec: PrivateKey = generate("ES256")
        self.rsa_kid = key_id(public_of(self.rsa))
        self.ec_kid = key_id(public_of(self.ec))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(public_of(self.rsa), "RS256"), public_jwk(public_of(self.ec), "ES256")]}

    def token(self, alg: str = "RS256", typ: str = "at+jwt", **over: Any) -> str:
        key, kid = (self.rsa, self.rsa_kid) if alg == "RS256" else (self.ec, self.ec_kid)
        return sign(claims(**over), key, alg=alg, kid=kid, typ=typ)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def validator(keys: Keys, clock: Clock) -> Iterator[TokenValidator]:
    v = TokenValidator.from_jwks(keys.jwks(), issuer=ISS, audience=AUD, algorithms=["RS256", "ES256"], clock=clock)
    yield v
    v.close()


def refused(validator: TokenValidator, token: str) -> str:
    with pytest.raises(InvalidToken) as err:
        validator.validate(token)
    return err.value.reason


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"sig") -> str:
    return f"{b64u_json(header)}.{b64u_json(payload)}.{b64u(signature)}"


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64u_json(header)}.{b64u_json(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64u(mac)}"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_valid_tokens(validator: TokenValidator, keys: Keys, alg: str) -> None:
    token = validator.validate(keys.token(alg, scp="orders.read orders.write"))
    assert token.roles == frozenset({"Orders.Read"})
    assert token.scopes == frozenset({"orders.read", "orders.write"})
    assert token.is_app_only and (token.subject, token.client_id) == ("s", "c")


def test_typ_application_at_jwt_accepted(validator: TokenValidator, keys: Keys) -> None:
    validator.validate(keys.token(typ="application/at+jwt"))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_j01_alg_none(validator: TokenValidator, keys: Keys, alg: str) -> None:
    token = forge({"alg": alg, "kid": keys.rsa_kid, "typ": "at+jwt"}, claims(), b"")
    assert token.endswith(".")  # the empty signature of an unsecured JWS
    assert refused(validator, token) == "algorithm not allowed"
    unsigned = f"{b64u_json({'alg': alg, 'kid': keys.rsa_kid, 'typ': 'at+jwt'})}.{b64u_json(claims())}.AA"
    assert refused(validator, unsigned) == "algorithm not allowed"


@pytest.mark.parametrize("encoding", ["pem", "jwk-json", "n-bytes"])
def test_j02_hs256_maced_with_the_public_key(validator: TokenValidator, keys: Keys, encoding: str) -> None:
    pub = public_of(keys.rsa)
    jwk = public_jwk(pub, "RS256")
    secret = {"pem": public_to_pem(pub), "jwk-json": json.dumps(jwk).encode(),
              "n-bytes": base64.urlsafe_b64decode(jwk["n"] + "==")}[encoding]
    token = hs256({"alg": "HS256", "kid": keys.rsa_kid, "typ": "at+jwt"}, claims(), secret)
    assert refused(validator, token) == "algorithm not allowed"


def test_j02_each_key_bound_to_its_alg(validator: TokenValidator, keys: Keys) -> None:
    # An ES256 token naming the RSA key's kid, and the reverse: refused before any signature check.
    ec_as_rsa = sign(claims(), keys.ec, alg="ES256", kid=keys.rsa_kid, typ="at+jwt")
    rsa_as_ec = sign(claims(), keys.rsa, alg="RS256", kid=keys.ec_kid, typ="at+jwt")
    assert refused(validator, ec_as_rsa) == "algorithm does not match the key"
    assert refused(validator, rsa_as_ec) == "algorithm does not match the key"


def test_j02_jwks_entry_with_mismatched_key_type_is_ignored(keys: Keys) -> None:
    rsa_jwk = public_jwk(public_of(keys.rsa), "RS256") | {"alg": "ES256"}  # an RSA key claiming ES256
    v = TokenValidator.from_jwks({"keys": [rsa_jwk]}, issuer=ISS, audience=AUD, algorithms=["RS256", "ES256"])
    assert v.kids == frozenset()


def test_jose_verify_signature_refuses_wrong_key_type(keys: Keys) -> None:
    token = keys.token("RS256")
    head, payload, sig = token.split(".")
    signature = base64.urlsafe_b64decode(sig + "==")
    good = VerificationKey(kid="k", alg="RS256", key=public_of(keys.rsa))
    assert verify_signature(good, f"{head}.{payload}".encode(), signature)
    assert not verify_signature(good, f"{head}.{payload}x".encode(), signature)
    assert not verify_signature(VerificationKey(kid="k", alg="ES256", key=public_of(keys.rsa)),
                                f"{head}.{payload}".encode(), signature)
    assert not verify_signature(VerificationKey(kid="k", alg="HS256", key=public_of(keys.rsa)), b"x", b"y")


def test_j03_algorithms_required_and_never_one_string() -> None:
    with pytest.raises(TypeError):
        TokenValidator(issuer=ISS, audience=AUD)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        TokenValidator(audience=AUD, algorithms=["RS256"])  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="algorithms"):
        TokenValidator(issuer=ISS, audience=AUD, algorithms="RS256")
    with pytest.raises(ValueError, match="audience"):
        TokenValidator(issuer=ISS, audience="", algorithms=["RS256"])


@pytest.mark.parametrize("kid", ["../../../../etc/passwd", "' OR 1=1 --", "k" * 10_000, "kid\x00",
                                 "/dev/null", "http://169.254.169.254/latest"])
def test_j04_kid_injection(validator: TokenValidator, keys: Keys, kid: str) -> None:
    token = sign(claims(), keys.rsa, alg="RS256", kid=kid, typ="at+jwt")
    reason = refused(validator, token)
    assert reason == ("token too large" if len(token) > 8192 else "unknown kid")


class CountingHandler(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        CountingHandler.hits.append(self.path)
        body = json.dumps({"keys": []}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[str]:
    """A local JWKS endpoint that counts requests: an attacker's `jku`/`x5u` target."""
    CountingHandler.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), CountingHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize("member", ["jku", "x5u"])
def test_j05_jku_x5u_ignored_and_never_fetched(validator: TokenValidator, keys: Keys, attacker: str,
                                                member: str) -> None:
    evil = generate("RS256")
    evil_kid = key_id(public_of(evil))
    url = f"{attacker}/jwks.json"
    forged = sign_with_headers(claims(), evil, alg="RS256", headers={"kid": evil_kid, "typ": "at+jwt", member: url})
    assert refused(validator, forged) == "unknown kid"
    # A legitimate token carrying the header still validates with the issuer's key: the URL is ignored.
    legit = sign_with_headers(claims(), keys.rsa, alg="RS256",
                              headers={"kid": keys.rsa_kid, "typ": "at+jwt", member: url})
    validator.validate(legit)
    assert CountingHandler.hits == []


def test_j05_fetching_validator_never_follows_jku(keys: Keys, attacker: str) -> None:
    """A validator that does fetch (its issuer is unreachable here) still never touches the `jku`."""
    v = TokenValidator(issuer="https://127.0.0.1:9/t/v2.0", audience=AUD, algorithms=["RS256"])
    evil = generate("RS256")
    forged = sign_with_headers(claims(), evil, alg="RS256",
                               headers={"kid": key_id(public_of(evil)), "typ": "at+jwt", "jku": attacker})
    with pytest.raises(KeysUnavailable):
        v.validate(forged)
    v.close()
    assert CountingHandler.hits == []


def test_j06_embedded_jwk_ignored(validator: TokenValidator, keys: Keys) -> None:
    evil = generate("RS256")
    evil_jwk = public_jwk(public_of(evil), "RS256")
    own_kid = sign_with_headers(claims(), evil, alg="RS256", headers={"kid": evil_jwk["kid"], "typ": "at+jwt",
                                                                       "jwk": evil_jwk})
    borrowed_kid = sign_with_headers(claims(), evil, alg="RS256", headers={"kid": keys.rsa_kid, "typ": "at+jwt",
                                                                            "jwk": evil_jwk})
    assert refused(validator, own_kid) == "unknown kid"
    assert refused(validator, borrowed_kid) == "bad signature"


def test_j06_self_signed_x5c_ignored(validator: TokenValidator, keys: Keys) -> None:
    cert = new_cert("rsa2048")
    x5c = [base64.b64encode(cert.der).decode()]
    for kid in (key_id(public_of(cert.key)), keys.rsa_kid):
        token = sign_with_headers(claims(), cert.key, alg="RS256", headers={"kid": kid, "typ": "at+jwt", "x5c": x5c})
        assert refused(validator, token) in {"unknown kid", "bad signature"}


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["urn:example"], [], "exp"])
def test_j07_crit(validator: TokenValidator, keys: Keys, crit: Any) -> None:
    token = sign_with_headers(claims(), keys.rsa, alg="RS256",
                              headers={"kid": keys.rsa_kid, "typ": "at+jwt", "crit": crit, "exp": 1})
    assert refused(validator, token) in {"unsupported critical header", "malformed crit"}


def test_j08_nested_jwt_and_jwe(validator: TokenValidator, keys: Keys) -> None:
    inner = keys.token()
    nested = sign_with_headers({"token": inner}, keys.rsa, alg="RS256",
                               headers={"kid": keys.rsa_kid, "typ": "at+jwt", "cty": "JWT"})
    assert refused(validator, nested) == "nested token"
    jwe = ".".join([b64u_json({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": keys.rsa_kid, "typ": "at+jwt"}),
                    b64u(b"k" * 256), b64u(b"iv"), b64u(b"ct"), b64u(b"tag")])
    assert refused(validator, jwe) == "not a compact JWS"
    jws_json = json.dumps({"payload": b64u_json(claims()), "signatures": []})
    assert refused(validator, jws_json) == "not a compact JWS"


def test_j09_token_cap_before_parsing(validator: TokenValidator, keys: Keys) -> None:
    huge = keys.token(pad="x" * 9000)
    with pytest.raises(TokenTooLarge):
        validator.validate(huge)
    with pytest.raises(TokenTooLarge):
        validator.validate("a" * 1_000_000)  # not even a JWS: refused on length alone
    assert validator.validate(keys.token(pad="x" * 5000)).claims["pad"]


@pytest.mark.parametrize(
    ("over", "reason"),
    [({"exp": int(NOW) - 31}, "expired"), ({"exp": None}, "missing claim exp"), ({"exp": "2000000000"},
      "exp is not a NumericDate"), ({"nbf": int(NOW) + 31}, "nbf in the future"), ({"iat": int(NOW) + 31},
      "iat in the future"), ({"iss": ISS + "/"}, "wrong issuer"), ({"aud": "api://orders-admin"},
      "wrong audience"), ({"aud": None}, "missing claim aud"), ({"sub": None}, "missing claim sub"),
     ({"client_id": None}, "missing claim client_id"), ({"jti": None}, "missing claim jti")],
)
def test_j12_j13_claims_through_the_validator(validator: TokenValidator, keys: Keys, over: dict[str, Any],
                                              reason: str) -> None:
    assert refused(validator, keys.token(**over)) == reason


def test_j12_leeway_and_injectable_clock(validator: TokenValidator, keys: Keys, clock: Clock) -> None:
    token = keys.token(exp=int(NOW) + 10)
    clock.now = NOW + 39
    validator.validate(token)
    clock.now = NOW + 40
    assert refused(validator, token) == "expired"
    with pytest.raises(ValueError, match="leeway"):
        TokenValidator(issuer=ISS, audience=AUD, algorithms=["RS256"], leeway=61)


def test_j13_audience_array(validator: TokenValidator, keys: Keys) -> None:
    validator.validate(keys.token(aud=["api://x", AUD]))
    assert refused(validator, keys.token(aud=["api://x", "api://orders-admin"])) == "wrong audience"


@pytest.mark.parametrize("typ", ["JWT", "jwt", "id_token", "dpop+jwt", "client-authentication+jwt", "at+jwt2"])
def test_j15_typ(validator: TokenValidator, keys: Keys, typ: str) -> None:
    assert refused(validator, keys.token(typ=typ)) == "wrong typ"
    no_typ = sign_with_headers(claims(), keys.rsa, alg="RS256", headers={"kid": keys.rsa_kid})
    assert refused(validator, no_typ) == "wrong typ"


def test_j16_token_kind_exposed(validator: TokenValidator, keys: Keys) -> None:
    app = validator.validate(keys.token())
    assert app.is_app_only and app.client_id == "c" and app.subject == "s"
    user = validator.validate(keys.token(idtyp=None, sub="user-oid", jti="j2"))
    assert not user.is_app_only and user.subject == "user-oid"


def test_j18_confirmation_claim_refused_as_bearer(validator: TokenValidator, keys: Keys) -> None:
    assert refused(validator, keys.token(cnf={"jkt": "abc"})).startswith("sender-constrained")


@pytest.mark.parametrize("mutate", ["pad", "plus", "slash", "newline", "crlf", "space", "tab"])
def test_j19_non_canonical_encodings(validator: TokenValidator, keys: Keys, mutate: str) -> None:
    token = keys.token()
    head, payload, sig = token.split(".")
    bad = {
        "pad": f"{head}.{payload}.{sig}==",
        "plus": f"{head}.{payload}.{sig.replace('-', '+').replace('_', '/')}" if "-" in sig or "_" in sig
        else f"{head}.{payload}.{sig[:-1]}+",
        "slash": f"{head}.{payload[:-1]}/.{sig}",
        "newline": f"{head}.{payload[:40]}\n{payload[40:]}.{sig}",
        "crlf": f"{head}.{payload}.{sig[:20]}\r\n{sig[20:]}",
        "space": f"{head}.{payload} .{sig}",
        "tab": f"{head}\t.{payload}.{sig}",
    }[mutate]
    with pytest.raises(InvalidToken):
        validator.validate(bad)
    # and the header-cache path refuses too once the header is known
    validator.validate(token)
    with pytest.raises(InvalidToken):
        validator.validate(bad)


def test_duplicate_members_and_tampering(validator: TokenValidator, keys: Keys) -> None:
    token = keys.token()
    head, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(payload + "==").decode()
    dup = b64u((raw[:-1] + ',"aud":"api://orders"}').encode())
    assert refused(validator, f"{head}.{dup}.{sig}") in {"bad signature", "duplicate member in JOSE JSON"}
    validator.validate(token)  # header now cached: payload tampering still fails the signature
    assert refused(validator, f"{head}.{b64u_json(claims(roles=['Admin']))}.{sig}") == "bad signature"
    assert refused(validator, "") == "not a compact JWS"
    assert refused(validator, 42) == "token is not a string"  # type: ignore[arg-type]


def test_i05_duplicate_kid_verifies_nothing(keys: Keys) -> None:
    jwk = public_jwk(public_of(keys.rsa), "RS256")
    odd = {"kty": "oct", "k": "c2VjcmV0", "kid": "x", "alg": "RS256"}
    v = TokenValidator.from_jwks({"keys": [jwk, jwk, odd, "junk", {"kid": 1}]}, issuer=ISS, audience=AUD,
                                 algorithms=["RS256"], clock=Clock())
    assert refused(v, keys.token()) == "unknown kid"


def test_memo_remembers_until_exp_and_only_while_the_key_is_published(keys: Keys, clock: Clock) -> None:
    v = TokenValidator.from_jwks(keys.jwks(), issuer=ISS, audience=AUD, algorithms=["RS256", "ES256"],
                                 clock=clock, memo_ttl=30, refresh_interval=60)
    token = keys.token(exp=int(NOW) + 100)
    first = v.validate(token)
    assert v.validate(token) is first  # remembered
    clock.now = NOW + 31
    second = v.validate(token)
    assert second is not first  # memo TTL over: validated again
    clock.now = NOW + 100 + 29
    v.validate(token)  # within leeway, validated afresh (the memo stops at exp)
    clock.now = NOW + 100 + 30
    assert refused(v, token) == "expired"
    # key removal: a remembered token stops validating as soon as the key set no longer holds its key
    fresh = keys.token(exp=int(NOW) + 1000, jti="k")
    v.validate(fresh)
    v._keyset = v._parse_jwks({"keys": [public_jwk(public_of(keys.ec), "ES256")]}, now=clock.now)
    assert refused(v, fresh) == "unknown kid"


def test_memo_is_bounded(keys: Keys, clock: Clock) -> None:
    v = TokenValidator.from_jwks(keys.jwks(), issuer=ISS, audience=AUD, algorithms=["ES256"], clock=clock,
                                 memo_size=5)
    for i in range(20):
        v.validate(keys.token("ES256", jti=f"j{i}"))
    assert len(v._memo) <= 5


def test_a_full_memo_forgets_its_oldest_eighth_at_once(keys: Keys, clock: Clock) -> None:
    """A memo full of fresh tokens (a busy resource server's steady state) makes room for an eighth of
    itself in one pass, oldest first, instead of a pass over every entry for each new token."""
    v = TokenValidator.from_jwks(keys.jwks(), issuer=ISS, audience=AUD, algorithms=["ES256"], clock=clock,
                                 memo_size=16)
    tokens = [keys.token("ES256", jti=f"full-{i}") for i in range(18)]
    first = [v.validate(t) for t in tokens[:16]]
    v.validate(tokens[16])  # full: the two oldest go
    assert len(v._memo) == 15
    v.validate(tokens[17])  # room was made: nothing else goes
    assert [v.validate(t) is a for t, a in zip(tokens[2:16], first[2:], strict=True)] == [True] * 14
    assert v.validate(tokens[0]) is not first[0] and v.validate(tokens[1]) is not first[1]


def test_a_full_memo_forgets_stale_tokens_before_the_oldest_fresh_one(keys: Keys, clock: Clock) -> None:
    v = TokenValidator.from_jwks(keys.jwks(), issuer=ISS, audience=AUD, algorithms=["ES256"], clock=clock,
                                 memo_size=8)
    oldest = keys.token("ES256", jti="oldest", exp=int(NOW) + 1000)
    short = keys.token("ES256", jti="short", exp=int(NOW) + 10)
    remembered = v.validate(oldest)
    v.validate(short)
    for i in range(6):
        v.validate(keys.token("ES256", jti=f"fill-{i}", exp=int(NOW) + 1000))
    clock.now = NOW + 11  # `short` is past its exp: stale in the memo
    v.validate(keys.token("ES256", jti="one-more", exp=int(NOW) + 1000))
    assert v.validate(oldest) is remembered  # the stale entry made the room, the oldest fresh one stayed
    assert len(v._memo) == 8


def test_a_full_memo_with_more_stale_tokens_than_its_eighth_keeps_every_fresh_one(keys: Keys, clock: Clock) -> None:
    v = TokenValidator.from_jwks(keys.jwks(), issuer=ISS, audience=AUD, algorithms=["ES256"], clock=clock,
                                 memo_size=8)
    fresh = [keys.token("ES256", jti=f"fresh-{i}", exp=int(NOW) + 1000) for i in range(5)]
    remembered = [v.validate(t) for t in fresh]
    for i in range(3):
        v.validate(keys.token("ES256", jti=f"short-{i}", exp=int(NOW) + 10))
    clock.now = NOW + 11  # three stale entries: more than the eighth (one) that room is made for
    v.validate(keys.token("ES256", jti="one-more", exp=int(NOW) + 1000))
    assert len(v._memo) == 6
    assert [v.validate(t) is r for t, r in zip(fresh, remembered, strict=True)] == [True] * 5


def test_option_bounds() -> None:
    with pytest.raises(ValueError, match="memo_ttl"):
        TokenValidator(issuer=ISS, audience=AUD, algorithms=["RS256"], memo_ttl=120, refresh_interval=60)
    with pytest.raises(ValueError, match="refresh_interval"):
        TokenValidator(issuer=ISS, audience=AUD, algorithms=["RS256"], refresh_interval=600, max_age=300)
