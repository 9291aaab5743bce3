"""Catalog I: JWKS and key rotation, against real servers.

I03 and I04 rotate and retire keys, which would invalidate management tokens that other test modules hold
for the shared `server`; they run on a server of their own (one per storage backend, module scope).

Rows not tested here: I05 and I06's resource-server half belong to the validation library (catalog J);
I07 (thumbprint over required members) is pinned against the RFC 7638 vector in
tests/unit/crypto/test_thumbprints.py and, independently of our code, by `test_i02_*` below.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key

from keyless.crypto import aead
from keyless.directory.service import MIN_ACTIVATION_DELAY
from keyless.oauth.keyring import key_aad
from keyless.server.datadir import DataDir, load_kek
from tests.conftest import SHARED_ENV
from tests.security.support import (
    PRIVATE_JWK_MEMBERS,
    RFC7638_REQUIRED,
    SecWorld,
    b64u_decode,
    jwt_header,
    rfc7638_thumbprint,
    sec_world,
)
from tests.support.server import (
    Admin,
    RunningServer,
    postgres_database,
    require_postgres,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

JWKS_PATHS = ["discovery/v2.0/keys", "discovery/keys"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def rotation(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecWorld]:
    """A server whose keys these tests may rotate and retire."""
    tmp = tmp_path_factory.mktemp(f"rotation-{request.param}")
    if request.param == "postgresql":
        require_postgres()
        with postgres_database() as url:
            srv = start_server(tmp, database_url=url, env=SHARED_ENV)
            try:
                with sec_world(srv) as w:
                    yield w
            finally:
                stop_server(srv)
        return
    srv = start_server(tmp, env=SHARED_ENV)
    try:
        with sec_world(srv) as w:
            yield w
    finally:
        stop_server(srv)


def keys_api(w: SecWorld, token: str | None = None) -> list[dict[str, Any]]:
    resp = w.manage("GET", "/keys", token=token)
    assert resp.status_code == 200, resp.text
    return list(resp.json())


def signing_kid(w: SecWorld) -> str:
    resp = w.token()
    assert resp.status_code == 200, resp.text
    return str(jwt_header(resp.json()["access_token"])["kid"])


# -- I01, I02 ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", JWKS_PATHS)
def test_i01_jwks_public_members_only(world: SecWorld, path: str) -> None:
    resp = world.http.get(f"{world.server.url}/{world.server.tenant_id}/{path}")
    assert resp.status_code == 200
    keys = resp.json()["keys"]
    assert keys
    for jwk in keys:
        assert not PRIVATE_JWK_MEMBERS & set(jwk), jwk
        assert set(jwk) == {*RFC7638_REQUIRED[jwk["kty"]], "kid", "use", "alg"}
        assert jwk["use"] == "sig"
        assert jwk["kty"] in {"RSA", "EC"}


def test_i01_rsa_key_size(world: SecWorld) -> None:
    for jwk in world.jwks()["keys"]:
        if jwk["kty"] == "RSA":
            assert len(b64u_decode(jwk["n"])) * 8 >= 2048
            assert int.from_bytes(b64u_decode(jwk["e"]), "big") == 65537


def test_i02_kid_is_rfc7638_thumbprint(world: SecWorld) -> None:
    keys = world.jwks()["keys"]
    kids = [k["kid"] for k in keys]
    assert len(kids) == len(set(kids))
    for jwk in keys:
        assert jwk["kid"] == rfc7638_thumbprint(jwk)
    assert signing_kid(world) in kids


def test_i06_token_alg_matches_its_jwk(world: SecWorld) -> None:
    resp = world.token()
    header = jwt_header(resp.json()["access_token"])
    jwk = next(k for k in world.jwks()["keys"] if k["kid"] == header["kid"])
    assert header["alg"] == jwk["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert set(header) == {"alg", "kid", "typ"}  # no jwk/jku/x5u/x5c for a verifier to be tempted by


def test_i02_kid_never_reused_across_rotations(rotation: SecWorld) -> None:
    before = {k["kid"] for k in keys_api(rotation)}
    rotated = rotation.manage("POST", "/keys/rotate", json={"activate_in": 600})
    assert rotated.status_code == 201, rotated.text
    kid = rotated.json()["kid"]
    assert kid not in before
    jwk = next(k for k in rotation.jwks()["keys"] if k["kid"] == kid)
    assert kid == rfc7638_thumbprint(jwk)


# -- I03 --------------------------------------------------------------------------------------------------

def test_i03_rotation_publishes_before_signing(rotation: SecWorld) -> None:
    old = signing_kid(rotation)
    published_before = set(rotation.kids())
    started = time.time()
    resp = rotation.manage("POST", "/keys/rotate", json={"activate_in": 600})
    assert resp.status_code == 201, resp.text
    new = resp.json()
    assert new["status"] == "next"
    assert new["activates_at"] - new["created_at"] == pytest.approx(600, abs=1)
    assert new["activates_at"] >= started + 2 * 300 - 1  # ≥ the JWKS max-age (300 s) ahead, twice over
    # Published at once ...
    assert new["kid"] in rotation.kids()
    assert published_before <= set(rotation.kids())
    # ... but tokens keep the old key until activation.
    for _ in range(3):
        assert signing_kid(rotation) == old
    listing = {k["kid"]: k for k in keys_api(rotation)}
    assert listing[old]["status"] == "active"
    assert listing[new["kid"]]["status"] == "next"
    # Rotation never schedules the old key's removal: it stays published until its successor has signed for
    # longer than any token lives (frozen-clock tests: tests/unit/oauth/test_keyring.py).
    assert listing[old]["retire_at"] is None


def test_i03_default_activation_delay(rotation: SecWorld) -> None:
    resp = rotation.manage("POST", "/keys/rotate", json={})
    assert resp.status_code == 201
    body = resp.json()
    assert body["activates_at"] - body["created_at"] >= 600 - 1
    assert body["kid"] in rotation.kids()


def test_i03_jwks_max_age_shorter_than_activation_delay(world: SecWorld) -> None:
    resp = world.http.get(f"{world.server.url}/{world.server.tenant_id}/discovery/v2.0/keys")
    max_age = int(resp.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= 600 // 2


# -- I04 --------------------------------------------------------------------------------------------------

def test_i04_retire_removes_from_jwks(rotation: SecWorld) -> None:
    stale_admin_token = rotation.admin.api.token()
    old = signing_kid(rotation)
    assert jwt_header(stale_admin_token)["kid"] == old
    resp = rotation.manage("POST", "/keys/rotate", json={"activate_in": 0})
    assert resp.status_code == 201, resp.text
    emergency = resp.json()["kid"]
    assert emergency in rotation.kids()  # published at once ...
    assert signing_kid(rotation) == old  # ... and signs once every replica publishes it (2 s)
    time.sleep(MIN_ACTIVATION_DELAY)
    assert signing_kid(rotation) == emergency
    assert {k["kid"]: k["status"] for k in keys_api(rotation)}[old] == "previous"
    assert old in rotation.kids()  # still published: tokens it signed keep verifying
    old_token = stale_admin_token
    assert rotation.manage("GET", "/keys", token=old_token).status_code == 200  # still valid before retirement

    retired = rotation.manage("POST", f"/keys/{old}/retire")
    assert retired.status_code == 204, retired.text
    assert old not in rotation.kids()
    assert emergency in rotation.kids()
    # Tokens under the retired key fail at once at the management API (an in-process resource server).
    refused = rotation.manage("GET", "/keys", token=old_token)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="keyless", error="invalid_token"'
    assert refused.json()["code"] == "invalid_token"
    # A fresh admin (new token, new key) still manages the tenant.
    stale, rotation.admin = rotation.admin, Admin(rotation.server)
    if stale is not rotation.admin:
        stale.api.http.close()
    listing = {k["kid"]: k["status"] for k in rotation.admin.api.call("GET", "/keys")}
    assert listing[old] == "retired"
    assert jwt_header(rotation.admin.api.token())["kid"] == emergency


def test_i04_retire_unknown_or_last_key_refused(rotation: SecWorld) -> None:
    unknown = rotation.manage("POST", "/keys/not-a-kid/retire")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "key_not_found"
    listing = keys_api(rotation)
    (active,) = [k["kid"] for k in listing if k["status"] == "active"]
    # Only the active key signs now ("previous" keys appear only between an activation and a retirement),
    # so retiring it would leave the tenant unable to issue tokens.
    assert [k for k in listing if k["status"] == "previous"] == []
    conflict = rotation.manage("POST", f"/keys/{active}/retire")
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "last_signing_key"
    assert active in rotation.kids()
    assert signing_kid(rotation) == active


def test_i04_retired_key_not_retirable_twice(rotation: SecWorld) -> None:
    (old,) = [k["kid"] for k in keys_api(rotation) if k["status"] == "active"]
    assert rotation.manage("POST", "/keys/rotate", json={"activate_in": 0}).status_code == 201
    time.sleep(MIN_ACTIVATION_DELAY)
    assert rotation.manage("POST", f"/keys/{old}/retire").status_code == 204
    # The admin's token was signed by the key just retired: continue as a fresh admin, without the
    # CLI's cached token (which that key signed).
    stale, rotation.admin = rotation.admin, Admin(rotation.server)
    stale.api.http.close()
    rotation.admin.api.forget_token()
    again = rotation.manage("POST", f"/keys/{old}/retire")
    assert again.status_code == 404
    assert again.json()["code"] == "key_not_found"


# -- I08 --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", JWKS_PATHS)
def test_i08_jwks_headers(world: SecWorld, path: str) -> None:
    url = f"{world.server.url}/{world.server.tenant_id}/{path}"
    resp = world.http.get(url, headers={"origin": "https://spa.example"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["cache-control"] == "public, max-age=300"
    assert resp.headers["access-control-allow-origin"] == "*"
    etag = resp.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    again = world.http.get(url, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "public, max-age=300"
    other = world.http.get(url, headers={"if-none-match": '"something-else"'})
    assert other.status_code == 200 and other.json() == resp.json()


def test_i08_etag_changes_with_the_key_set(rotation: SecWorld) -> None:
    url = f"{rotation.server.url}/{rotation.server.tenant_id}/discovery/v2.0/keys"
    before = rotation.http.get(url)
    assert rotation.manage("POST", "/keys/rotate", json={"activate_in": 600}).status_code == 201
    after = rotation.http.get(url, headers={"if-none-match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]


def test_i08_discovery_points_at_the_jwks(world: SecWorld) -> None:
    doc = world.http.get(f"{world.server.url}/{world.server.tenant_id}/v2.0/.well-known/openid-configuration")
    assert doc.status_code == 200
    assert doc.json()["jwks_uri"] == f"{world.server.url}/{world.server.tenant_id}/discovery/v2.0/keys"
    assert doc.json()["issuer"] == world.server.issuer
    assert doc.headers["access-control-allow-origin"] == "*"


def test_i08_unknown_tenant_jwks(world: SecWorld) -> None:
    resp = world.http.get(f"{world.server.url}/{uuid.uuid4()}/discovery/v2.0/keys")
    assert resp.status_code == 404
    assert resp.json() == {"error": "invalid_request", "error_description": "unknown tenant"}


# -- I09 --------------------------------------------------------------------------------------------------

def test_i09_keys_per_tenant(sqlite_server: RunningServer, rotation: SecWorld) -> None:
    """Only one tenant can exist per directory yet, so two directories stand in for two tenants: their key
    sets share nothing, one tenant's JWKS path does not serve another tenant's id, and one tenant's token
    is refused by the other's resource (the management API)."""
    other = sqlite_server
    assert other.tenant_id != rotation.server.tenant_id
    with other.http() as http:  # each directory has its own CA
        other_jwks = http.get(f"{other.url}/{other.tenant_id}/discovery/v2.0/keys")
        assert other_jwks.status_code == 200
        other_kids = {k["kid"] for k in other_jwks.json()["keys"]}
        assert other_kids and other_kids.isdisjoint(rotation.kids())
        assert signing_kid(rotation) not in other_kids
        foreign = http.get(f"{other.url}/{rotation.server.tenant_id}/discovery/v2.0/keys")
        assert foreign.status_code == 404
        refused = http.get(f"{other.url}/{other.tenant_id}/manage/v1/keys",
                           headers={"Authorization": f"Bearer {rotation.admin.api.token()}"})
        assert refused.status_code == 401


def test_i09_private_keys_encrypted_at_rest(sqlite_server: RunningServer) -> None:
    data = DataDir(sqlite_server.data_dir)
    with sqlite3.connect(f"file:{data.sqlite}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT kid, public_jwk, sealed_private FROM signing_keys").fetchall()
    assert rows
    kek = load_kek(data)
    for kid, _public_jwk, sealed in rows:
        sealed = bytes(sealed)
        assert not sealed.startswith(b"\x30\x82")  # not a bare PKCS#8 DER key
        with pytest.raises(ValueError):
            load_der_private_key(sealed, password=None)
        private = load_der_private_key(aead.open_sealed(kek, sealed, key_aad(kid)), password=None)
        assert isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        with pytest.raises(aead.DecryptionFailed):  # bound to its own kid
            aead.open_sealed(kek, sealed, key_aad(kid + "x"))


def test_i09_signing_keys_never_in_management_api(world: SecWorld) -> None:
    listing = keys_api(world)
    assert listing
    for key in listing:
        assert set(key) == {"kid", "alg", "created_at", "activates_at", "retire_at", "status"}
    text = world.manage("GET", "/keys").text
    assert "sealed" not in text and '"d"' not in text


def test_token_verifies_against_published_key(world: SecWorld) -> None:
    import jwt

    resp = world.token()
    token = resp.json()["access_token"]
    header = jwt_header(token)
    jwk = next(k for k in world.jwks()["keys"] if k["kid"] == header["kid"])
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=[jwk["alg"]], audience=world.resource_uri, issuer=world.server.issuer)
    assert claims["client_id"] == world.client_id
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), key, algorithms=[jwk["alg"]],
                   audience=world.resource_uri)

