"""Certificate credentials through the management API, on both storage backends: upload (PEM and base64
DER), the refusals (private keys, duplicates, the per-application cap, the tenant's lifetime cap), listing
without key material, revocation, and issuing from a CSR with the local CA."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keyless.crypto.client_keys import certificate_signing_request, generate_client_key, private_key_pem
from tests.support.certs import (
    AUTH_FAILED,
    ClientCert,
    assertion_form,
    cert_with_validity,
    claims_for,
    last_failure_detail,
    manage,
    new_cert,
    set_tenant,
)
from tests.support.server import Admin, RunningServer

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

CERT_FIELDS = {"id", "client_id", "x5t", "x5t_s256", "subject", "key_type", "key_size", "not_before", "not_after",
               "display_name", "created_at", "last_used_at"}


def _problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = dict(resp.json())
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == f"urn:keyless:problem:{code}"
    return body


def _upload(server: RunningServer, admin: Admin, client_id: str, text: str, **extra: Any) -> httpx.Response:
    return manage(server, admin, "POST", f"/applications/{client_id}/certificates",
                  json={"certificate": text, **extra})


def _app(admin: Admin) -> str:
    return str(admin.app(f"cert-app-{uuid.uuid4().hex[:8]}")["client_id"])


def _key_fragments(cert: ClientCert) -> list[str]:
    """Distinctive pieces of the private key's PEM and DER encodings."""
    pem_body = "".join(cert.key_pem.decode().splitlines()[1:-1])
    der = cert.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    der_b64 = base64.b64encode(der).decode()
    return [pem_body[i:i + 24] for i in range(40, len(pem_body) - 24, 200)] + [der_b64[100:140]]


def test_upload_pem(server: RunningServer, admin: Admin) -> None:
    client_id = _app(admin)
    cert = new_cert(cn="pem-upload")
    resp = _upload(server, admin, client_id, cert.cert_pem.decode(), display_name="laptop")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == CERT_FIELDS
    assert body["client_id"] == client_id
    assert body["x5t"] == cert.info.x5t and body["x5t_s256"] == cert.info.x5t_s256
    assert (body["key_type"], body["key_size"]) == ("RSA", 2048)
    assert body["subject"] == "CN=pem-upload"
    assert body["display_name"] == "laptop"
    assert body["not_after"] == pytest.approx(cert.info.not_after)
    assert body["last_used_at"] is None


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "ed25519"])
def test_upload_base64_der(server: RunningServer, admin: Admin, kind: str) -> None:
    client_id = _app(admin)
    cert = new_cert(kind)
    der_b64 = base64.b64encode(cert.der).decode()
    resp = _upload(server, admin, client_id, "\n".join(der_b64[i:i + 76] for i in range(0, len(der_b64), 76)))
    assert resp.status_code == 201, resp.text
    assert resp.json()["x5t_s256"] == cert.info.x5t_s256
    assert resp.json()["key_type"] == {"rsa2048": "RSA", "p256": "EC", "ed25519": "Ed25519"}[kind]


@pytest.mark.parametrize("shape", ["key_then_cert", "cert_then_key", "key_only_pem", "pkcs1_pem", "der_key_b64",
                                   "pfx_b64"])
def test_upload_with_private_key_refused_and_never_echoed(server: RunningServer, admin: Admin, shape: str) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    client_id = _app(admin)
    cert = new_cert()
    key_pem = cert.key_pem.decode()
    pkcs1 = cert.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                   serialization.NoEncryption()).decode()
    der = cert.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    pfx = pkcs12.serialize_key_and_certificates(b"c", cert.key, x509.load_pem_x509_certificate(cert.cert_pem),
                                                None, serialization.NoEncryption())
    text = {
        "key_then_cert": key_pem + cert.cert_pem.decode(),
        "cert_then_key": cert.cert_pem.decode() + key_pem,
        "key_only_pem": key_pem,
        "pkcs1_pem": pkcs1,
        "der_key_b64": base64.b64encode(der).decode(),
        "pfx_b64": base64.b64encode(pfx).decode(),
    }[shape]
    resp = _upload(server, admin, client_id, text)
    body = _problem(resp, 400, "private_key_in_upload")
    assert "private key" in body["detail"]
    for fragment in _key_fragments(cert):
        assert fragment not in resp.text
    assert "BEGIN" not in resp.text
    # Nothing was registered.
    listed = manage(server, admin, "GET", f"/applications/{client_id}/certificates")
    assert listed.status_code == 200 and listed.json() == []


def test_duplicate_certificate_conflict(server: RunningServer, admin: Admin) -> None:
    client_id = _app(admin)
    cert = new_cert()
    assert _upload(server, admin, client_id, cert.cert_pem.decode()).status_code == 201
    _problem(_upload(server, admin, client_id, cert.cert_pem.decode()), 409, "certificate_exists")
    # The same certificate as base64 DER is the same certificate.
    _problem(_upload(server, admin, client_id, base64.b64encode(cert.der).decode()), 409, "certificate_exists")
    # Another application may register it (it proves possession per application, not globally).
    assert _upload(server, admin, _app(admin), cert.cert_pem.decode()).status_code == 201


def test_eleventh_certificate_conflict(server: RunningServer, admin: Admin) -> None:
    client_id = _app(admin)
    ids = []
    for i in range(10):
        resp = _upload(server, admin, client_id, new_cert("p256", cn=f"c{i}").cert_pem.decode())
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    _problem(_upload(server, admin, client_id, new_cert("p256").cert_pem.decode()), 409, "too_many_certificates")
    # Revoking one makes room again.
    assert manage(server, admin, "DELETE", f"/applications/{client_id}/certificates/{ids[0]}").status_code == 204
    assert _upload(server, admin, client_id, new_cert("p256").cert_pem.decode()).status_code == 201


def test_list_never_returns_key_material(server: RunningServer, admin: Admin) -> None:
    client_id = _app(admin)
    certs = [new_cert(cn="one"), new_cert("p256", cn="two")]
    for cert in certs:
        assert _upload(server, admin, client_id, cert.cert_pem.decode()).status_code == 201
    resp = manage(server, admin, "GET", f"/applications/{client_id}/certificates")
    assert resp.status_code == 200
    listed = resp.json()
    assert len(listed) == 2
    assert all(set(entry) == CERT_FIELDS for entry in listed)
    assert {entry["x5t_s256"] for entry in listed} == {c.info.x5t_s256 for c in certs}
    for cert in certs:
        for fragment in _key_fragments(cert):
            assert fragment not in resp.text
    assert "BEGIN" not in resp.text and "PRIVATE" not in resp.text.upper()


def test_revoke_then_404(server: RunningServer, admin: Admin) -> None:
    client_id = _app(admin)
    cert_id = _upload(server, admin, client_id, new_cert().cert_pem.decode()).json()["id"]
    path = f"/applications/{client_id}/certificates/{cert_id}"
    resp = manage(server, admin, "DELETE", path)
    assert resp.status_code == 204 and resp.content == b""
    _problem(manage(server, admin, "DELETE", path), 404, "certificate_not_found")
    assert manage(server, admin, "GET", f"/applications/{client_id}/certificates").json() == []
    # A certificate id of another application is not found through this one.
    other = _app(admin)
    other_cert = _upload(server, admin, other, new_cert().cert_pem.decode()).json()["id"]
    _problem(manage(server, admin, "DELETE", f"/applications/{client_id}/certificates/{other_cert}"), 404,
             "certificate_not_found")
    assert len(manage(server, admin, "GET", f"/applications/{other}/certificates").json()) == 1


def test_ca_sign_issues_certificate_that_verifies_and_authenticates(server: RunningServer, admin: Admin) -> None:
    resource = f"api://ca-{uuid.uuid4().hex[:8]}"
    admin.app("ca-resource", identifier_uri=resource, roles=("Data.Read",))
    client_id = _app(admin)
    admin.grant(client_id, resource, "Data.Read")
    key = generate_client_key("p256")
    csr = certificate_signing_request(key, "requested-name")
    resp = manage(server, admin, "POST", "/ca/sign",
                  json={"client_id": client_id, "csr": csr.decode(), "days": 30, "display_name": "from-csr"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == CERT_FIELDS | {"certificate"}
    assert private_key_pem(key).decode().splitlines()[1] not in resp.text

    issued = x509.load_pem_x509_certificate(body["certificate"].encode())
    ca_resp = manage(server, admin, "GET", "/ca")
    assert ca_resp.status_code == 200
    ca = x509.load_pem_x509_certificate(ca_resp.json()["certificate"].encode())
    issued.verify_directly_issued_by(ca)
    assert issued.public_key() == key.public_key()
    lifetime = issued.not_valid_after_utc - issued.not_valid_before_utc
    assert lifetime.days <= 31
    # Registered on the application, and usable for private_key_jwt at once.
    listed = manage(server, admin, "GET", f"/applications/{client_id}/certificates").json()
    assert [c["id"] for c in listed] == [body["id"]]
    assertion_claims = claims_for(client_id, server.issuer)
    from keyless.jose.jws import sign_with_headers

    assertion = sign_with_headers(assertion_claims, key, alg="ES256",
                                  headers={"typ": "JWT", "x5t#S256": body["x5t_s256"]})
    with server.http() as http:
        token = http.post(server.token_endpoint, data=assertion_form(assertion, f"{resource}/.default"))
    assert token.status_code == 200, token.text


def test_ca_sign_refusals(server: RunningServer, admin: Admin) -> None:
    client_id = _app(admin)
    key = generate_client_key("rsa2048")
    csr = certificate_signing_request(key, "x").decode()
    tenant = manage(server, admin, "GET", "/tenant").json()
    too_many_days = tenant["max_certificate_lifetime"] // 86400 + 1
    if too_many_days <= 3650:
        _problem(manage(server, admin, "POST", "/ca/sign", json={"client_id": client_id, "csr": csr,
                                                                  "days": too_many_days}),
                 400, "invalid_certificate_lifetime")
    resp = manage(server, admin, "POST", "/ca/sign",
                  json={"client_id": client_id, "csr": private_key_pem(key).decode()})
    assert resp.status_code == 400, resp.text
    assert "BEGIN" not in resp.text
    assert manage(server, admin, "GET", f"/applications/{client_id}/certificates").json() == []


def test_tenant_max_certificate_lifetime_caps_uploads(server: RunningServer, admin: Admin) -> None:
    client_id = _app(admin)
    original = manage(server, admin, "GET", "/tenant").json()["max_certificate_lifetime"]
    try:
        assert set_tenant(server, admin, max_certificate_lifetime=30 * 86400)["max_certificate_lifetime"] == 30 * 86400
        long_lived = new_cert(days=365)
        body = _problem(_upload(server, admin, client_id, long_lived.cert_pem.decode()), 400,
                        "certificate_lifetime_too_long")
        assert "30 days" in body["detail"]
        assert _upload(server, admin, client_id, new_cert(days=20).cert_pem.decode()).status_code == 201
    finally:
        set_tenant(server, admin, max_certificate_lifetime=original)
    assert manage(server, admin, "GET", "/tenant").json()["max_certificate_lifetime"] == original
    assert _upload(server, admin, client_id, new_cert(days=365).cert_pem.decode()).status_code == 201


def test_certificate_last_used_at_set_after_sign_in(server: RunningServer, admin: Admin) -> None:
    resource = f"api://lu-{uuid.uuid4().hex[:8]}"
    admin.app("lu-resource", identifier_uri=resource, roles=("Data.Read",))
    client_id = _app(admin)
    admin.grant(client_id, resource, "Data.Read")
    cert = new_cert()
    cert_id = _upload(server, admin, client_id, cert.cert_pem.decode()).json()["id"]
    before = time.time()
    with server.http() as http:
        resp = http.post(server.token_endpoint, data=assertion_form(cert.sign(claims_for(client_id, server.issuer)),
                                                                    f"{resource}/.default"))
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 5
    while True:
        listed = {c["id"]: c for c in manage(server, admin, "GET", f"/applications/{client_id}/certificates").json()}
        used = listed[cert_id]["last_used_at"]
        if used is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert used is not None and used >= before - 2


def test_expired_certificate_upload_refused(server: RunningServer, admin: Admin) -> None:
    now = time.time()
    expired = cert_with_validity(now - 40 * 86400, now - 86400)
    _problem(_upload(server, admin, _app(admin), expired.cert_pem.decode()), 400, "certificate_expired")


def test_not_yet_valid_certificate_does_not_authenticate(server: RunningServer, admin: Admin) -> None:
    """A certificate registered ahead of its notBefore (a planned rollover) is not honoured until then."""
    resource = f"api://nyv-{uuid.uuid4().hex[:8]}"
    admin.app("nyv-resource", identifier_uri=resource, roles=("Data.Read",))
    client_id = _app(admin)
    admin.grant(client_id, resource, "Data.Read")
    now = time.time()
    future = cert_with_validity(now + 86400, now + 30 * 86400)
    assert _upload(server, admin, client_id, future.cert_pem.decode()).status_code == 201
    with server.http() as http:
        resp = http.post(server.token_endpoint,
                         data=assertion_form(future.sign(claims_for(client_id, server.issuer)), f"{resource}/.default"))
    assert resp.status_code == 401
    assert resp.json() == AUTH_FAILED
    assert last_failure_detail(server, admin, client_id) == "certificate_not_valid_now"
