"""Catalog B: client-assertion JWTs (`private_key_jwt`), against a real server over TLS on both backends.

Every refusal is checked twice: the exact wire answer (status and body), and the sign-in log's `detail`
for the failure, so that a 401 for an incidental reason (say, an unknown certificate) cannot pass for the
refusal the row is about.

Rows not tested as written:

* B04, B17, B20, B25, B26 have no entry in the catalog.
* B08 (a `jti` used at /token replayed at /introspect or /revoke): Keyless has no introspection or
  revocation endpoint, so /token is the only endpoint that consumes assertions. B08/B09 are covered by the
  namespacing test: the one-time store keys are `(kind="client_assertion", client, jti)`, so the same `jti`
  value is usable once by each of two clients and never twice by one.
* B27's 16384-bit RSA case uses a certificate whose (unusable) public key has a 16384-bit modulus, signed
  by an ordinary 2048-bit issuer key: generating a real 16384-bit key takes minutes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tests.security.support import SecWorld
from tests.support.certs import (
    AUTH_FAILED,
    BAD_FORMAT,
    CLIENT_ID_MISMATCH,
    ClientCert,
    assertion_form,
    b64u,
    b64u_json,
    claims_for,
    http_for,
    last_failure_detail,
    manage,
    new_cert,
    register,
    set_tenant,
)
from tests.support.server import Admin, RunningServer, start_server, stop_server

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
SHARED_ENV = {"KEYLESS_SOURCE_FAILURE_BURST": "1000000", "KEYLESS_CLIENT_FAILURE_BURST": "1000000"}


@dataclass
class CertWorld:
    """Two granted clients, each with one registered RSA certificate, on one server."""

    server: RunningServer
    admin: Admin
    http: httpx.Client
    scope: str
    client_id: str
    cert: ClientCert
    other_id: str
    other_cert: ClientCert

    def send(self, assertion: str, **form: Any) -> httpx.Response:
        return self.http.post(self.server.token_endpoint, data=assertion_form(assertion, self.scope, **form))

    def claims(self, *, client_id: str | None = None, aud: Any = ..., **overrides: Any) -> dict[str, Any]:
        """Claims addressed to the issuer unless `aud` is given; `aud=None` (like any None) drops it."""
        claims = claims_for(client_id or self.client_id, self.server.issuer if aud is ... else aud, **overrides)
        if aud is None:
            del claims["aud"]
        return claims

    def refused(self, resp: httpx.Response, detail: str, *, client_id: str | None = None,
                attributed: bool = True) -> None:
        """401 invalid_client, and the sign-in log says why (`attributed=False`: the server could not
        read the assertion's `sub`, so the failure is logged without a client)."""
        assert_json(resp, 401, AUTH_FAILED)
        who = (client_id or self.client_id) if attributed else None
        assert last_failure_detail(self.server, self.admin, who) == detail

    def accepted(self, resp: httpx.Response) -> None:
        assert resp.status_code == 200, resp.text
        assert resp.json()["token_type"] == "Bearer"


def assert_json(resp: httpx.Response, status: int, body: dict[str, Any]) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == body
    for name, value in NO_STORE.items():
        assert resp.headers.get(name) == value


def _cert_world(server: RunningServer, admin: Admin, http: httpx.Client, resource_uri: str) -> CertWorld:
    ids: list[str] = []
    certs: list[ClientCert] = []
    for _ in range(2):
        client = admin.app(f"sec-b-{uuid.uuid4().hex[:8]}")
        admin.grant(client["client_id"], resource_uri, "Data.Read")
        cert = new_cert()
        register(server, admin, client["client_id"], cert)
        ids.append(client["client_id"])
        certs.append(cert)
    return CertWorld(server=server, admin=admin, http=http, scope=f"{resource_uri}/.default", client_id=ids[0],
                     cert=certs[0], other_id=ids[1], other_cert=certs[1])


@pytest.fixture(scope="module")
def cw(world: SecWorld) -> CertWorld:
    return _cert_world(world.server, world.admin, world.http, world.resource_uri)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertWorld]:
    """A server of its own whose tenant is in strict audience mode (RFC 10070 / FAPI 2.0)."""
    srv = start_server(tmp_path_factory.mktemp("strict-audience"), env=SHARED_ENV)
    try:
        with Admin(srv) as admin, http_for(srv) as http:
            uri = f"api://strict-{uuid.uuid4().hex[:8]}"
            admin.app("strict-resource", identifier_uri=uri, roles=("Data.Read",))
            w = _cert_world(srv, admin, http, uri)
            assert set_tenant(srv, admin, assertion_audience="strict")["assertion_audience"] == "strict"
            yield w
    finally:
        stop_server(srv)


def _compact(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64u_json(header)}.{b64u_json(claims)}.{b64u(signature)}"


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64u_json(header)}.{b64u_json(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64u(mac)}"


# -- sanity: the baseline assertion is accepted --------------------------------------------------------------

def test_baseline_issuer_audience_accepted(cw: CertWorld) -> None:
    cw.accepted(cw.send(cw.cert.sign(cw.claims())))
    cw.accepted(cw.send(cw.cert.sign(cw.claims(), alg="RS256", headers={"x5t": cw.cert.info.x5t})))


# -- B01-B03: audience ---------------------------------------------------------------------------------------

def test_b01_token_endpoint_aud_strict_refused_entra_accepted(cw: CertWorld, strict: CertWorld) -> None:
    # Entra-compatible mode (the default): the exact token endpoint URL is accepted ...
    cw.accepted(cw.send(cw.cert.sign(cw.claims(aud=cw.server.token_endpoint))))
    # ... but only as that exact string.
    for near in (cw.server.token_endpoint + "/", cw.server.token_endpoint.upper(),
                 cw.server.token_endpoint.replace("/v2.0/", "/"), cw.server.url + "/",
                 f"{cw.server.url}/{cw.server.tenant_id}/oauth2/v2.0/authorize"):
        cw.refused(cw.send(cw.cert.sign(cw.claims(aud=near))), "audience_mismatch")
    # Strict mode: the token endpoint is refused, the issuer accepted.
    strict.refused(strict.send(strict.cert.sign(strict.claims(aud=strict.server.token_endpoint))),
                   "audience_mismatch")
    strict.accepted(strict.send(strict.cert.sign(strict.claims())))


def test_b02_multiple_audiences_refused(cw: CertWorld, strict: CertWorld) -> None:
    for w in (cw, strict):
        for aud in ([w.server.issuer, "https://other-as"], ["https://other-as", w.server.issuer],
                    [w.server.issuer, w.server.issuer], []):
            w.refused(w.send(w.cert.sign(w.claims(aud=aud))), "audience_not_single")


def test_b03_single_member_array_entra_accepted_strict_refused(cw: CertWorld, strict: CertWorld) -> None:
    cw.accepted(cw.send(cw.cert.sign(cw.claims(aud=[cw.server.issuer]))))
    cw.refused(cw.send(cw.cert.sign(cw.claims(aud=["https://other-as"]))), "audience_mismatch")
    strict.refused(strict.send(strict.cert.sign(strict.claims(aud=[strict.server.issuer]))), "audience_not_a_string")


def test_b03_other_audiences_refused(cw: CertWorld) -> None:
    for aud in ("https://other-as", cw.server.issuer + "/", cw.server.url, 42, {"iss": cw.server.issuer}):
        detail = "audience_mismatch" if isinstance(aud, str) else "claim_invalid:aud"
        cw.refused(cw.send(cw.cert.sign(cw.claims(aud=aud))), detail)


# -- B05, B06: required claims, iss/sub/client_id ------------------------------------------------------------

@pytest.mark.parametrize(("claim", "detail"), [
    ("aud", "audience_missing"), ("exp", "exp_missing"), ("jti", "jti_missing"), ("iss", "iss_missing"),
    ("sub", "sub_missing"),
])
def test_b05_missing_claim_refused(cw: CertWorld, claim: str, detail: str) -> None:
    # Without `sub` the attempt cannot be attributed to the client in the sign-in log.
    cw.refused(cw.send(cw.cert.sign(cw.claims(**{claim: None}))), detail, attributed=claim != "sub")


@pytest.mark.parametrize(("claim", "value"), [
    ("jti", ""), ("jti", 42), ("jti", "x" * 257), ("exp", "soon"), ("exp", True), ("iss", ""), ("sub", 7),
])
def test_b05_malformed_claim_refused(cw: CertWorld, claim: str, value: Any) -> None:
    claims = cw.claims()
    claims[claim] = value
    assert_json(cw.send(cw.cert.sign(claims)), 401, AUTH_FAILED)


def test_b06_iss_not_sub_refused(cw: CertWorld) -> None:
    cw.refused(cw.send(cw.cert.sign(cw.claims(iss=cw.other_id))), "iss_not_sub")
    cw.refused(cw.send(cw.cert.sign(cw.claims(iss="someone-else"))), "iss_not_sub")


def test_b06_sub_not_body_client_id_invalid_request(cw: CertWorld) -> None:
    resp = cw.send(cw.cert.sign(cw.claims()), client_id=cw.other_id)
    assert_json(resp, 400, CLIENT_ID_MISMATCH)
    # The matching body client_id is fine.
    cw.accepted(cw.send(cw.cert.sign(cw.claims()), client_id=cw.client_id))


# -- B07-B09: replay and namespacing -------------------------------------------------------------------------

def test_b07_sequential_replay_refused(cw: CertWorld) -> None:
    assertion = cw.cert.sign(cw.claims())
    cw.accepted(cw.send(assertion))
    cw.refused(cw.send(assertion), "assertion_replayed")
    cw.refused(cw.send(assertion, client_id=cw.client_id), "assertion_replayed")
    # A new assertion with the same jti (re-signed, other iat) is the same one-time use.
    first = cw.claims()
    cw.accepted(cw.send(cw.cert.sign(first)))
    again = cw.claims(jti=first["jti"], iat=first["iat"] - 1)
    cw.refused(cw.send(cw.cert.sign(again)), "assertion_replayed")


def test_b07_refused_assertion_does_not_burn_the_jti(cw: CertWorld) -> None:
    """The jti is consumed only after everything else verified: a forged or misaddressed assertion with a
    victim's jti cannot burn it."""
    claims = cw.claims()
    cw.refused(cw.send(cw.other_cert.sign(claims, headers={"typ": "JWT"})), "bad_signature_or_alg")
    cw.refused(cw.send(cw.cert.sign({**claims, "aud": "https://other-as"})), "audience_mismatch")
    cw.accepted(cw.send(cw.cert.sign(claims)))


def test_b08_b09_jti_namespaced_per_client_and_kind(cw: CertWorld) -> None:
    jti = f"shared-{uuid.uuid4()}"
    mine = cw.claims(jti=jti)
    theirs = cw.claims(client_id=cw.other_id, jti=jti)
    cw.accepted(cw.send(cw.cert.sign(mine)))
    # Another client may use the same jti value: the store key is (client_assertion, client, jti) ...
    cw.accepted(cw.send(cw.other_cert.sign(theirs)))
    # ... and neither may use it twice.
    cw.refused(cw.send(cw.cert.sign(cw.claims(jti=jti))), "assertion_replayed")
    cw.refused(cw.send(cw.other_cert.sign(cw.claims(client_id=cw.other_id, jti=jti))), "assertion_replayed",
               client_id=cw.other_id)


# -- B10, B11: time claims -----------------------------------------------------------------------------------

def test_b10_exp_five_minutes_past_refused(cw: CertWorld) -> None:
    now = int(time.time())
    cw.refused(cw.send(cw.cert.sign(cw.claims(iat=now - 600, exp=now - 300))), "assertion_expired")


def test_b10_exp_one_year_ahead_refused(cw: CertWorld) -> None:
    now = int(time.time())
    cw.refused(cw.send(cw.cert.sign(cw.claims(exp=now + 365 * 86400))), "assertion_lifetime_too_long")
    cw.refused(cw.send(cw.cert.sign(cw.claims(iat=None, exp=now + 365 * 86400))), "assertion_lifetime_too_long")


def test_b10_lifetime_over_maximum_refused(cw: CertWorld) -> None:
    now = int(time.time())
    # Entra-compatible tenants (the default) cap assertions at 30 minutes; strict ones at 10 (unit-tested).
    cw.refused(cw.send(cw.cert.sign(cw.claims(iat=now - 1600, exp=now + 300))), "assertion_lifetime_too_long")
    # MSAL's 600 s lifetime with float NumericDates is accepted.
    t = time.time()
    cw.accepted(cw.send(cw.cert.sign(cw.claims(iat=t, exp=t + 600))))


def test_b10_recently_expired_within_leeway_accepted(cw: CertWorld) -> None:
    now = int(time.time())
    cw.accepted(cw.send(cw.cert.sign(cw.claims(iat=now - 60, exp=now - 5))))


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_b11_iat_nbf_8s_future_accepted_61s_refused(cw: CertWorld, claim: str) -> None:
    now = time.time()  # float: rounding down would bring "+61 s" under the 60 s limit
    soon: dict[str, Any] = {claim: now + 8}
    late: dict[str, Any] = {claim: now + 61.5}
    cw.accepted(cw.send(cw.cert.sign(cw.claims(exp=now + 300, **soon))))
    cw.refused(cw.send(cw.cert.sign(cw.claims(exp=now + 300, **late))), f"{claim}_in_future")


# -- B12-B16: algorithms and keys ----------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_b12_alg_none_refused(cw: CertWorld, alg: str) -> None:
    header = {"alg": alg, "typ": "JWT", "x5t#S256": cw.cert.info.x5t_s256}
    cw.refused(cw.send(_compact(header, cw.claims())), "bad_signature_or_alg")
    # ... with no certificate hint at all, and with a copied genuine signature.
    cw.refused(cw.send(_compact({"alg": alg}, cw.claims())), "bad_signature_or_alg")
    genuine = cw.cert.sign(cw.claims())
    cw.refused(cw.send(_compact(header, cw.claims()).rstrip(".") + "." + genuine.split(".")[2]),
               "bad_signature_or_alg")


@pytest.mark.parametrize("form", ["cert_pem", "spki_pem", "spki_der", "cert_der", "jwk_json"])
def test_b13_hs256_with_public_key_as_secret_refused(cw: CertWorld, form: str) -> None:
    pub = cw.cert.key.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    numbers = pub.public_numbers()

    def as_b64u(n: int) -> str:
        return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))

    secrets = {
        "cert_pem": cw.cert.cert_pem,
        "spki_pem": cw.cert.public_pem(),
        "spki_der": cw.cert.public_der(),
        "cert_der": cw.cert.der,
        "jwk_json": json.dumps({"kty": "RSA", "n": as_b64u(numbers.n), "e": as_b64u(numbers.e)}).encode(),
    }
    for header in ({"alg": "HS256", "typ": "JWT", "x5t#S256": cw.cert.info.x5t_s256}, {"alg": "HS256"}):
        cw.refused(cw.send(_hs256(header, cw.claims(), secrets[form])), "bad_signature_or_alg")


def test_b14_alg_not_allowed_for_registered_key_refused(cw: CertWorld) -> None:
    # ES256 named on an RSA-registered certificate; the signature is a real ES256 one by an EC key.
    ec_key = ec.generate_private_key(ec.SECP256R1())
    from keyless.jose.jws import sign_with_headers

    forged = sign_with_headers(cw.claims(), ec_key, alg="ES256", headers={"typ": "JWT",
                                                                         "x5t#S256": cw.cert.info.x5t_s256})
    cw.refused(cw.send(forged), "bad_signature_or_alg")
    # RS384/RS512/PS512 by the registered RSA key itself: valid signatures, but not an allowed algorithm.
    for alg in ("RS384", "RS512", "PS384", "PS512"):
        cw.refused(cw.send(cw.cert.sign(cw.claims(), alg=alg)), "bad_signature_or_alg")
    # RS256 and PS256 are the two allowed for RSA.
    cw.accepted(cw.send(cw.cert.sign(cw.claims(), alg="RS256")))


def test_b15_signed_with_another_clients_key_refused(cw: CertWorld) -> None:
    claims = cw.claims()
    # Naming the other client's certificate: not registered on this client.
    cw.refused(cw.send(cw.other_cert.sign(claims)), "no_matching_certificate")
    # Naming this client's certificate, but signed by the other client's key.
    cw.refused(cw.send(cw.other_cert.sign(claims, headers={"typ": "JWT", "x5t#S256": cw.cert.info.x5t_s256})),
               "bad_signature_or_alg")
    # Naming no certificate: every registered one is tried, none verifies.
    cw.refused(cw.send(cw.other_cert.sign(claims, headers={"typ": "JWT"})), "bad_signature_or_alg")
    # The real key still works with the same claims (nothing was consumed).
    cw.accepted(cw.send(cw.cert.sign(claims)))


def test_b16_header_supplied_keys_ignored(cw: CertWorld) -> None:
    attacker = new_cert(cn="attacker")
    pub = attacker.key.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    n, e = pub.public_numbers().n, pub.public_numbers().e
    jwk = {"kty": "RSA", "n": b64u(n.to_bytes(256, "big")), "e": b64u(e.to_bytes(3, "big"))}
    x5c = [base64.b64encode(attacker.der).decode("ascii")]
    for extra, detail in (
        ({"jwk": jwk}, "bad_signature_or_alg"),
        ({"jku": "https://attacker.example/jwks"}, "bad_signature_or_alg"),
        ({"x5u": "https://attacker.example/cert.pem"}, "bad_signature_or_alg"),
        ({"x5c": x5c}, "no_matching_certificate"),
        ({"jwk": jwk, "x5t#S256": cw.cert.info.x5t_s256}, "bad_signature_or_alg"),
        ({"x5c": x5c, "x5t#S256": cw.cert.info.x5t_s256}, "bad_signature_or_alg"),
        ({"kid": attacker.info.x5t_s256, "jwk": jwk}, "no_matching_certificate"),
    ):
        cw.refused(cw.send(attacker.sign(cw.claims(), alg="RS256", headers={"typ": "JWT", **extra})), detail)


def test_b16_x5c_of_registered_certificate_accepted(cw: CertWorld) -> None:
    """An `x5c` naming the registered certificate (MSAL's public_certificate path) works, newlines and all."""
    body = base64.b64encode(cw.cert.der).decode("ascii")
    wrapped = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    cw.accepted(cw.send(cw.cert.sign(cw.claims(), headers={"typ": "JWT", "x5c": [wrapped]})))


# -- B18, B19: typ and crit ----------------------------------------------------------------------------------

@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "dpop+jwt", "oauth-authz-req+jwt", "JWE", "JOSE",
                                 "logout+jwt"])
def test_b18_foreign_typ_refused(cw: CertWorld, typ: str) -> None:
    header = {"typ": typ, "x5t#S256": cw.cert.info.x5t_s256}
    cw.refused(cw.send(cw.cert.sign(cw.claims(), headers=header)), "assertion_typ")


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "client-authentication+jwt",
                                 "application/client-authentication+jwt"])
def test_b18_accepted_typ(cw: CertWorld, typ: str | None) -> None:
    header: dict[str, Any] = {"x5t#S256": cw.cert.info.x5t_s256}
    if typ is not None:
        header["typ"] = typ
    cw.accepted(cw.send(cw.cert.sign(cw.claims(), headers=header)))


def test_b19_unknown_crit_refused(cw: CertWorld) -> None:
    for crit in (["exp-ext"], ["b64"], ["exp-ext", "x5t#S256"]):
        header = {"typ": "JWT", "x5t#S256": cw.cert.info.x5t_s256, "crit": crit, "exp-ext": True, "b64": True}
        # An unreadable header: the log cannot attribute the attempt to the client.
        cw.refused(cw.send(cw.cert.sign(cw.claims(), headers=header)), "unsupported_crit", attributed=False)


# -- B21-B24: format ---------------------------------------------------------------------------------------

def test_b21_json_serialization_and_jwe_refused(cw: CertWorld) -> None:
    compact = cw.cert.sign(cw.claims())
    protected, payload, signature = compact.split(".")
    flattened = json.dumps({"protected": protected, "payload": payload, "signature": signature})
    general = json.dumps({"payload": payload, "signatures": [{"protected": protected, "signature": signature}]})
    jwe = ".".join([b64u_json({"alg": "RSA-OAEP", "enc": "A256GCM"}), b64u(b"k" * 256), b64u(b"i" * 12),
                    b64u(b"ciphertext"), b64u(b"t" * 16)])
    polyglot = compact + "." + b64u(b'{"payload":"x"}')
    for value in (flattened, general, jwe, polyglot, compact + "." + compact):
        assert_json(cw.send(value), 400, BAD_FORMAT)
    # A JWE-looking header in a 3-segment token is refused too.
    jwe_header = _compact({"alg": "RSA-OAEP", "enc": "A256GCM"}, cw.claims(), b"x" * 32)
    cw.refused(cw.send(jwe_header), "bad_signature_or_alg")


def test_b22_oversized_assertion_refused_before_decoding(cw: CertWorld) -> None:
    genuine = cw.cert.sign(cw.claims())
    head, payload, sig = genuine.split(".")
    over = 16 * 1024 + 1
    too_long = {"error": "invalid_request", "error_description": "parameter too long"}
    # Over 16 KiB: refused by the form parser's per-parameter cap, before any base64/JSON decoding.
    for value in (f"{'A' * over}.{payload}.{sig}", f"{head}.{payload}.{'A' * over}", f"{head}.{'A' * over}.{sig}",
                  "A" * over):
        assert_json(cw.send(value), 400, too_long)
    # At the cap, an oversized header segment is refused as malformed, still without decoding it.
    at_cap = f"{'~' * (16 * 1024 - len(payload) - len(sig) - 2)}.{payload}.{sig}"
    assert len(at_cap) == 16 * 1024
    assert_json(cw.send(at_cap), 400, BAD_FORMAT)
    # The catalog's 1 MB segment does not even get parsed: the token endpoint caps the form at 32 KiB.
    resp = cw.send(f"{head}.{payload}.{'A' * (1024 * 1024)}")
    assert_json(resp, 400, {"error": "invalid_request", "error_description": "request body too large"})


@pytest.mark.parametrize("value", [
    "a.b", "a", "a.b.c.d", ".x.", "..", "...", "..sig", "a..c",
    "ey$$.eyJ.sig", "eyJhbGciOiJQUzI1NiJ9.eyJ+/.sig", "eyJhbGci OiJQUzI1NiJ9.eyJ.sig",
    " eyJhbGciOiJQUzI1NiJ9.e30.sig", "eyJhbGciOiJQUzI1NiJ9.e30.sig\n", "eyJhbGciOiJQUzI1NiJ9\t.e30.sig",
])
def test_b23_malformed_compact_invalid_request(cw: CertWorld, value: str) -> None:
    assert_json(cw.send(value), 400, BAD_FORMAT)


def test_b23_undecodable_segments_invalid_request(cw: CertWorld) -> None:
    claims = b64u_json(cw.claims())
    header = b64u_json({"alg": "PS256"})
    bad_header_utf8 = b64u(b'{"alg":"PS256","x":"\xff\xfe"}')
    bad_payload_utf8 = b64u(b'{"sub":"\xc3\x28"}')
    dup_header = b64u(b'{"alg":"PS256","alg":"none"}')
    dup_payload = b64u(b'{"sub":"a","sub":"b"}')
    for value in (
        f"{bad_header_utf8}.{claims}.c2ln",  # invalid UTF-8 in the header
        f"{header}.{bad_payload_utf8}.c2ln",  # invalid UTF-8 in the payload
        f"{b64u(b'not json')}.{claims}.c2ln",
        f"{b64u(b'[1,2]')}.{claims}.c2ln",
        f"{header}.{b64u(b'1')}.c2ln",
        f"{dup_header}.{claims}.c2ln",  # duplicate members
        f"{header}.{dup_payload}.c2ln",
        "A.e30.c2ln",  # a base64url length that cannot occur (1 mod 4)
    ):
        assert_json(cw.send(value), 400, BAD_FORMAT)


def test_b23_padded_segments_tolerated(cw: CertWorld) -> None:
    """Compat §2.2: azure-identity's async client pads all three segments (signing the padded input); the
    server accepts that as the one exception to the unpadded-base64url rule."""
    def pad(text: str) -> str:
        return text + "=" * (-len(text) % 4)

    # A header whose JSON length makes its base64url need padding, with spaces as azure-identity writes it.
    for extra in ("", " ", "  "):
        text = '{"typ": "JWT", "alg": "PS256", "x5t#S256": "' + cw.cert.info.x5t_s256 + '"' + extra + "}"
        header = pad(b64u(text.encode()))
        payload = pad(b64u(json.dumps(cw.claims()).encode()))
        key = cw.cert.key
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = key.sign(f"{header}.{payload}".encode("ascii"),
                             padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        padded = f"{header}.{payload}.{pad(b64u(signature))}"
        assert padded.endswith("=")
        cw.accepted(cw.send(padded))


@pytest.mark.parametrize("assertion_type", [None, "", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                                            "urn:ietf:params:oauth:grant-type:jwt-bearer", "JWT"])
def test_b24_assertion_type_missing_or_wrong_invalid_request(cw: CertWorld, assertion_type: str | None) -> None:
    resp = cw.send(cw.cert.sign(cw.claims()), assertion_type=assertion_type)
    assert_json(resp, 400, {"error": "invalid_request",
                            "error_description": "client_assertion_type must be jwt-bearer with a client_assertion"})


def test_b24_assertion_type_without_assertion_invalid_request(cw: CertWorld) -> None:
    form = {"grant_type": "client_credentials", "scope": cw.scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    assert_json(cw.http.post(cw.server.token_endpoint, data=form), 400,
                {"error": "invalid_request",
                 "error_description": "client_assertion_type must be jwt-bearer with a client_assertion"})


# -- B27, B28: registration policy and key replacement -------------------------------------------------------

def _cert_with_public_key(public_key: Any, signer: Any) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public_key)
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=30)).sign(signer, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _rsa_16384_public_key() -> rsa.RSAPublicKey:
    n = (1 << 16383) | 0xFFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFF1  # odd, exactly 16384 bits; not a real modulus
    return rsa.RSAPublicNumbers(65537, n).public_key()


@pytest.mark.parametrize(("kind", "code"), [
    ("rsa1024", "key_size_not_allowed"), ("rsa16384", "key_size_not_allowed"), ("p192", "curve_not_allowed"),
    ("secp256k1", "curve_not_allowed"), ("p521", "curve_not_allowed"),
])
def test_b27_weak_or_oversized_key_registration_refused(cw: CertWorld, kind: str, code: str) -> None:
    signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "rsa1024":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point
        pem = _cert_with_public_key(key.public_key(), key)
    elif kind == "rsa16384":
        pem = _cert_with_public_key(_rsa_16384_public_key(), signer)
    else:
        curve = {"p192": ec.SECP192R1(), "secp256k1": ec.SECP256K1(), "p521": ec.SECP521R1()}[kind]
        try:
            key = ec.generate_private_key(curve)
        except Exception as exc:  # an OpenSSL build without the curve
            pytest.skip(f"{kind} unavailable in this OpenSSL: {exc}")
        pem = _cert_with_public_key(key.public_key(), signer)
    resp = manage(cw.server, cw.admin, "POST", f"/applications/{cw.client_id}/certificates",
                  json={"certificate": pem})
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == code
    assert body["status"] == 400
    assert body["type"] == f"urn:keyless:problem:{code}"


def test_b28_revoked_and_replaced_certificate_refused(cw: CertWorld) -> None:
    client = cw.admin.app(f"sec-b28-{uuid.uuid4().hex[:8]}")
    client_id = client["client_id"]
    cw.admin.grant(client_id, cw.scope.removesuffix("/.default"), "Data.Read")
    old, new = new_cert(cn="old"), new_cert(cn="new")
    old_id = register(cw.server, cw.admin, client_id, old)["id"]
    cw.accepted(cw.send(old.sign(cw.claims(client_id=client_id))))
    # The admin replaces the key: add the new certificate, revoke the old one.
    register(cw.server, cw.admin, client_id, new)
    resp = manage(cw.server, cw.admin, "DELETE", f"/applications/{client_id}/certificates/{old_id}")
    assert resp.status_code == 204, resp.text
    cw.refused(cw.send(old.sign(cw.claims(client_id=client_id))), "no_matching_certificate", client_id=client_id)
    cw.refused(cw.send(old.sign(cw.claims(client_id=client_id), headers={"typ": "JWT"})), "bad_signature_or_alg",
               client_id=client_id)
    cw.refused(cw.send(old.sign(cw.claims(client_id=client_id), alg="RS256", headers={"x5t": old.info.x5t})),
               "no_matching_certificate", client_id=client_id)
    cw.accepted(cw.send(new.sign(cw.claims(client_id=client_id))))
