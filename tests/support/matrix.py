"""The authorization matrix (issue 20): what to call for each operation of the management API's OpenAPI
document, and who calls it.

`Recipes.prepare(method, path)` makes, through the CLI's own admin credential, the objects an
operation names (a fresh application for `DELETE /applications/{client_id}`, a deleted secret for
`.../deleted/{name}/recover`, ...) and returns path parameters, required query parameters and a body.
The body starts from the document's schema (every required property, with a value of its type and
within its limits) and is completed with the values only a live directory can supply, so that an
admin's call succeeds and a refused caller's 401/403 is never a 400 in disguise. An operation with no
recipe fails the walk: a new route cannot ship without joining the matrix.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from keyless.crypto.client_keys import certificate_signing_request, generate_client_key
from tests.support.certs import new_cert
from tests.support.server import Admin, RunningServer

PREFIX = "/{tenant}/manage/v1"
# Webhook endpoints the matrix registers point at a closed loopback port, which only this allows.
WEBHOOK_ENV = {"KEYLESS_WEBHOOK_ALLOW_PRIVATE": '["127.0.0.1"]'}
FEDERATED_ISSUER = "https://issuer.example.test"


def _u(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def example(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A value the schema accepts: required properties only, each the simplest of its type."""
    schema = _resolve(doc, schema)
    if "anyOf" in schema:
        return example(doc, next(s for s in schema["anyOf"] if s.get("type") != "null"))
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example(doc, props[name]) for name in schema.get("required", [])}
    if kind == "array":
        return [example(doc, schema.get("items", {}))] * schema.get("minItems", 0)
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return False
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    return None


@dataclass
class Prepared:
    path: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    secrets: list[str] = field(default_factory=list)  # values no audit record may contain
    targets: set[str] = field(default_factory=set)  # ids and names of the objects the call is about


class Recipes:
    """Objects for each operation, made by the CLI's admin (`admin`), usable by the matrix's admin app."""

    def __init__(self, server: RunningServer, admin: Admin, doc: dict[str, Any], admin_client_id: str) -> None:
        self.server = server
        self.admin = admin
        self.doc = doc
        self.admin_client_id = admin_client_id
        self.made: set[str] = set()
        self.role_resource = admin.app(_u("mx-res"), identifier_uri=f"api://{_u('mx-res')}", roles=("Data.Read",))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """A setup call as the CLI's admin; every string it answers may be what an audit record names."""
        out = self.admin.api.call(method, path, json_body=body)
        self.made |= strings(out)
        return out

    # -- objects ------------------------------------------------------------------------------------
    def app(self, identifier_uri: str | None = None) -> str:
        made = self.admin.app(_u("mx-app"), identifier_uri=identifier_uri)
        self.made |= strings(made)
        return str(made["client_id"])

    def vault(self) -> str:
        """A vault on which the matrix's admin app holds every data role (Purge included)."""
        name = f"mx{uuid.uuid4().hex[:10]}"
        self.call("POST", "/vaults", {"name": name})
        roles = ["Secrets.Get", "Secrets.List", "Secrets.Set", "Secrets.Delete", "Secrets.Recover",
                 "Secrets.Backup", "Secrets.Restore", "Secrets.Purge"]
        self.call("POST", f"/vaults/{name}/grants", {"principal": self.admin_client_id, "roles": roles})
        return name

    def secret_in(self, vault: str) -> str:
        name = _u("mx-secret")
        self.call("PUT", f"/vaults/{vault}/secrets/{name}", {"value": "s3cr3t-" + uuid.uuid4().hex})
        return name

    def host(self) -> str:
        return str(self.call("POST", "/hosts", {"name": _u("mx-host")})["id"])

    def identity(self) -> str:
        return str(self.call("POST", "/identities", {"name": _u("mx-id")})["name"])

    def federated(self, owner_path: str) -> str:
        body = {"name": _u("mx-fed"), "issuer": FEDERATED_ISSUER, "subject": _u("repo:o/r:ref")}
        return str(self.call("POST", f"{owner_path}/federated-credentials", body)["id"])

    def webhook(self) -> str:
        """An endpoint on a closed loopback port (the matrix server allows 127.0.0.1: WEBHOOK_ENV)."""
        return str(self.call("POST", "/webhooks", {"url": f"https://127.0.0.1:9/{_u('mx-hook')}"})["id"])

    def delivery(self) -> str:
        """A delivery: an endpoint, then an event for it (a key rotation), fanned out by the worker."""
        hook = self.webhook()
        self.call("POST", "/keys/rotate", {"activate_in": 86400})
        deadline = time.monotonic() + 10
        while not (found := self.call("GET", f"/webhook-deliveries?webhook={hook}")):
            assert time.monotonic() < deadline, "the outbox worker queued no delivery"
            time.sleep(0.05)
        return str(found[0]["id"])

    # -- per operation ------------------------------------------------------------------------------
    def prepare(self, method: str, path: str) -> Prepared:
        tail = path.removeprefix(PREFIX)
        recipe = self._recipes().get((method, tail))
        if recipe is None:
            raise AssertionError(f"no matrix recipe for {method.upper()} {tail}: add one to tests/support/matrix.py")
        self.made = set()
        prepared = recipe()
        prepared.targets = set(self.made)
        operation = self.doc["paths"][path][method]
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            prepared.body = {**example(self.doc, schema), **(prepared.body or {})}
        prepared.path = {"tenant": self.server.tenant_id, **prepared.path}
        return prepared

    def _recipes(self) -> dict[tuple[str, str], Callable[[], Prepared]]:
        P = Prepared
        app, vault, host, identity = self.app, self.vault, self.host, self.identity

        def with_app(extra: Callable[[str], dict[str, str]] | None = None) -> Callable[[], Prepared]:
            def make() -> Prepared:
                cid = app()
                return P({"client_id": cid, **(extra(cid) if extra else {})})
            return make

        def secret_of(cid: str) -> dict[str, str]:
            return {"secret_id": self.admin.secret(cid)["id"]}

        def cert_of(cid: str) -> dict[str, str]:
            pem = new_cert().cert_pem.decode()
            made = self.call("POST", f"/applications/{cid}/certificates", {"certificate": pem})
            return {"certificate_id": made["id"]}

        def leaked(location: str | None) -> Callable[[], Prepared]:
            """A live secret found by a scan: looked up (location None) or reported at `location`."""
            def make() -> Prepared:
                made = self.call("POST", f"/applications/{app()}/secrets", {})
                secret = str(made["secret"])
                body = {"secrets": [secret]} if location is None else {"secret": secret, "location": location}
                return P({}, body=body, secrets=[secret])
            return make

        def grant() -> Prepared:
            g = self.admin.grant(app(), self.role_resource["identifier_uri"], "Data.Read")
            return P({"grant_id": g["id"]})

        def retire() -> Prepared:
            key = self.call("POST", "/keys/rotate", {"activate_in": 86400})
            return P({"kid": key["kid"]})

        def csr() -> Prepared:
            pem = certificate_signing_request(generate_client_key("p256"), "matrix").decode()
            return P({}, body={"client_id": app(), "csr": pem, "days": 1})

        def in_vault(make_secret: bool = False, deleted: bool = False) -> Callable[[], Prepared]:
            def make() -> Prepared:
                v = vault()
                out = P({"vault": v})
                if make_secret or deleted:
                    out.path["name"] = self.secret_in(v)
                if deleted:
                    self.call("DELETE", f"/vaults/{v}/secrets/{out.path['name']}")
                return out
            return make

        def vault_grant() -> Prepared:
            v = vault()
            g = self.call("POST", f"/vaults/{v}/grants", {"principal": app(), "roles": ["Secrets.Get"]})
            return P({"vault": v, "grant_id": g[0]["id"]})

        def restore() -> Prepared:
            source = vault()
            blob = self.call("POST", f"/vaults/{source}/secrets/{self.secret_in(source)}/backup")["backup"]
            return P({"vault": vault()}, body={"backup": blob})  # into another vault of the tenant

        def assigned(assign: bool) -> Callable[[], Prepared]:
            def make() -> Prepared:
                ref, h = identity(), host()
                if assign:
                    self.call("PUT", f"/identities/{ref}/hosts/{h}")
                return P({"ref": ref, "host": h})
            return make

        def binding() -> Prepared:
            ref, h = identity(), host()
            self.call("PUT", f"/identities/{ref}/hosts/{h}")
            b = self.call("POST", f"/identities/{ref}/bindings", {"host": h, "uid": 1000})
            return P({"binding_id": b["id"]})

        def bindable() -> Prepared:
            ref, h = identity(), host()
            self.call("PUT", f"/identities/{ref}/hosts/{h}")
            return P({"ref": ref}, body={"host": h, "uid": 1000})

        def fed_app() -> Prepared:
            cid = app()
            return P({"client_id": cid, "ref": self.federated(f"/applications/{cid}")})

        def fed_identity() -> Prepared:
            ref = identity()
            return P({"identity": ref, "ref": self.federated(f"/identities/{ref}")})

        def audience(allowed: bool) -> Callable[[], Prepared]:
            def make() -> Prepared:
                cid = app()
                aud = f"api://{_u('mx-aud')}"
                if allowed:
                    self.call("POST", f"/applications/{cid}/identity-token-audiences", {"audience": aud})
                return P({"kind": "applications", "ref": cid}, query={"audience": aud} if allowed else {},
                         body=None if allowed else {"audience": aud})
            return make

        fed_body = {"name": "", "issuer": FEDERATED_ISSUER, "subject": "repo:o/r:ref:refs/heads/main"}
        token = _unsigned_like_jwt()
        return {
            ("get", "/tenant"): lambda: P({}),
            ("post", "/console/login-codes"): lambda: P({}),
            ("patch", "/tenant"): lambda: P({}, body={"token_lifetime": 3600}),
            ("get", "/applications"): lambda: P({}),
            ("post", "/applications"): lambda: P({}, body={"display_name": _u("mx-new")}),
            ("get", "/applications/{client_id}"): with_app(),
            ("patch", "/applications/{client_id}"): lambda: P({"client_id": app()}, body={"display_name": _u("mx")}),
            ("delete", "/applications/{client_id}"): with_app(),
            ("post", "/applications/{client_id}/roles"): lambda: P({"client_id": app(f"api://{_u('mx')}")},
                                                                   body={"value": "Role.X"}),
            ("get", "/applications/{client_id}/secrets"): with_app(),
            ("post", "/applications/{client_id}/secrets"): with_app(),
            ("delete", "/applications/{client_id}/secrets/{secret_id}"): with_app(secret_of),
            ("get", "/applications/{client_id}/certificates"): with_app(),
            ("post", "/applications/{client_id}/certificates"): lambda: P(
                {"client_id": app()}, body={"certificate": new_cert().cert_pem.decode()}),
            ("delete", "/applications/{client_id}/certificates/{certificate_id}"): with_app(cert_of),
            ("get", "/ca"): lambda: P({}),
            ("post", "/ca/sign"): csr,
            ("get", "/grants"): lambda: P({}),
            ("post", "/grants"): lambda: P({}, body={"client_id": app(), "resource": self.role_resource["client_id"],
                                                     "role": "Data.Read"}),
            ("delete", "/grants/{grant_id}"): grant,
            ("get", "/keys"): lambda: P({}),
            ("post", "/keys/rotate"): lambda: P({}, body={"activate_in": 86400}),
            ("post", "/keys/{kid}/retire"): retire,
            ("get", "/logs/signins"): lambda: P({}),
            ("get", "/logs/audit"): lambda: P({}),
            ("get", "/posture"): lambda: P({}),
            ("get", "/vaults"): lambda: P({}),
            ("post", "/vaults"): lambda: P({}, body={"name": f"mx{uuid.uuid4().hex[:10]}"}),
            ("get", "/vaults/{vault}"): in_vault(),
            ("patch", "/vaults/{vault}"): lambda: P({"vault": vault()}, body={"retention_days": 30}),
            ("post", "/vaults/{vault}/rotate-key"): in_vault(),
            ("get", "/vaults/{vault}/grants"): in_vault(),
            ("post", "/vaults/{vault}/grants"): lambda: P({"vault": vault()}, body={"principal": app(),
                                                                                   "roles": ["Secrets.Get"]}),
            ("delete", "/vaults/{vault}/grants/{grant_id}"): vault_grant,
            ("get", "/vaults/{vault}/secrets"): in_vault(),
            ("put", "/vaults/{vault}/secrets/{name}"): lambda: P({"vault": vault(), "name": _u("mx-new")},
                                                                 body={"value": "v-" + uuid.uuid4().hex}),
            ("get", "/vaults/{vault}/secrets/{name}"): in_vault(make_secret=True),
            ("patch", "/vaults/{vault}/secrets/{name}"): in_vault(make_secret=True),
            ("delete", "/vaults/{vault}/secrets/{name}"): in_vault(make_secret=True),
            ("get", "/vaults/{vault}/secrets/{name}/versions"): in_vault(make_secret=True),
            ("post", "/vaults/{vault}/secrets/{name}/backup"): in_vault(make_secret=True),
            ("post", "/vaults/{vault}/restore"): restore,
            ("get", "/vaults/{vault}/deleted"): in_vault(),
            ("get", "/vaults/{vault}/deleted/{name}"): in_vault(deleted=True),
            ("delete", "/vaults/{vault}/deleted/{name}"): in_vault(deleted=True),
            ("post", "/vaults/{vault}/deleted/{name}/recover"): in_vault(deleted=True),
            ("get", "/hosts"): lambda: P({}),
            ("post", "/hosts"): lambda: P({}, body={"name": _u("mx-host")}),
            ("get", "/hosts/{ref}"): lambda: P({"ref": host()}),
            ("delete", "/hosts/{ref}"): lambda: P({"ref": host()}),
            ("post", "/hosts/{ref}/join-token"): lambda: P({"ref": host()}),
            ("get", "/identities"): lambda: P({}),
            ("post", "/identities"): lambda: P({}, body={"name": _u("mx-id")}),
            ("get", "/identities/{ref}"): lambda: P({"ref": identity()}),
            ("delete", "/identities/{ref}"): lambda: P({"ref": identity()}),
            ("put", "/identities/{ref}/hosts/{host}"): assigned(False),
            ("delete", "/identities/{ref}/hosts/{host}"): assigned(True),
            ("post", "/identities/{ref}/bindings"): bindable,
            ("get", "/bindings"): lambda: P({}),
            ("delete", "/bindings/{binding_id}"): binding,
            ("get", "/applications/{client_id}/federated-credentials"): with_app(),
            ("post", "/applications/{client_id}/federated-credentials"): lambda: P(
                {"client_id": app()}, body={**fed_body, "name": _u("mx-fed")}),
            ("get", "/identities/{ref}/federated-credentials"): lambda: P({"ref": identity()}),
            ("post", "/identities/{ref}/federated-credentials"): lambda: P(
                {"ref": identity()}, body={**fed_body, "name": _u("mx-fed")}),
            ("delete", "/applications/{client_id}/federated-credentials/{ref}"): fed_app,
            ("delete", "/identities/{identity}/federated-credentials/{ref}"): fed_identity,
            ("get", "/federated-credentials/lint"): lambda: P({}),
            ("post", "/applications/{client_id}/federated-credentials/test"): lambda: P(
                {"client_id": app()}, body={"token": token}),
            ("post", "/identities/{ref}/federated-credentials/test"): lambda: P({"ref": identity()},
                                                                                body={"token": token}),
            ("post", "/leaks/lookup"): leaked(None),
            ("post", "/leaks"): leaked(f"repo/{_u('mx')}.env:1"),
            ("get", "/leaks"): lambda: P({}),
            ("get", "/credentials"): lambda: P({}),
            ("get", "/webhooks"): lambda: P({}),
            ("post", "/webhooks"): lambda: P({}, body={"url": f"https://127.0.0.1:9/{_u('mx-hook')}",
                                                       "event_types": []}),
            ("get", "/webhooks/{webhook_id}"): lambda: P({"webhook_id": self.webhook()}),
            ("delete", "/webhooks/{webhook_id}"): lambda: P({"webhook_id": self.webhook()}),
            ("post", "/webhooks/{webhook_id}/ping"): lambda: P({"webhook_id": self.webhook()}),
            ("get", "/webhook-deliveries"): lambda: P({}),
            ("get", "/webhook-deliveries/{delivery_id}"): lambda: P({"delivery_id": self.delivery()}),
            ("post", "/webhook-deliveries/{delivery_id}/redeliver"): lambda: P({"delivery_id": self.delivery()}),
            ("get", "/{kind}/{ref}/identity-token-audiences"): lambda: P({"kind": "applications", "ref": app()}),
            ("post", "/{kind}/{ref}/identity-token-audiences"): audience(False),
            ("delete", "/{kind}/{ref}/identity-token-audiences"): audience(True),
            # An empty policy (no rule) keeps the shared server's behaviour for every other operation.
            ("get", "/policy"): lambda: P({}),
            ("put", "/policy"): lambda: P({}, body={}),
            ("post", "/policy/test"): lambda: P({}, body={"policy": {}}),
            ("get", "/applications/{client_id}/policy"): with_app(),
            ("put", "/applications/{client_id}/policy"): with_app(),
        }


def strings(value: Any) -> set[str]:
    """Every string in a JSON value."""
    if isinstance(value, dict):
        return {s for v in value.values() for s in strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings(v)}
    return {value} if isinstance(value, str) else set()


def _unsigned_like_jwt() -> str:
    """A well-formed JWT from an issuer no credential trusts: `test` explains it without fetching anything."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'iss': 'https://untrusted.example.test', 'sub': 's'})}.c2ln"


def forged_token(kid: str, issuer: str, audience: str, roles: list[str]) -> str:
    """A token naming the server's own key id and issuer, signed by a key the server never had."""
    import time

    now = int(time.time())
    claims = {"iss": issuer, "aud": audience, "sub": str(uuid.uuid4()), "roles": roles, "iat": now, "nbf": now,
              "exp": now + 600, "tid": issuer.rsplit("/", 2)[-2], "appid": str(uuid.uuid4()), "ver": "2.0"}
    cert = new_cert()
    return cert.sign(claims, alg="RS256", headers={"typ": "at+jwt", "kid": kid})


def token_for(http: httpx.Client, server: RunningServer, client_id: str, secret: str, resource: str) -> str:
    resp = http.post(server.token_endpoint, data={"grant_type": "client_credentials", "client_id": client_id,
                                                  "client_secret": secret, "scope": f"{resource}/.default"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def expired_copy(server: RunningServer, token: str, *, ended_ago: int = 3600) -> str:
    """The same token, re-signed by the tenant's real signing key with a lifetime that ended `ended_ago`
    seconds ago: everything right but `exp` (the server's clock cannot be moved, its key can be read)."""
    import asyncio
    import time

    from keyless.clock import SystemClock
    from keyless.jose.jws import sign
    from keyless.oauth.keyring import KeyRing
    from keyless.server.datadir import DataDir, load_kek
    from keyless.store import db
    from keyless.store.directory import SqlDirectoryStore

    async def signer() -> Any:
        data = DataDir(server.data_dir)
        engine = db.create_engine(db.sqlite_url(data.sqlite))
        try:
            return await KeyRing(SqlDirectoryStore(engine), load_kek(data), SystemClock()).signer(server.tenant_id)
        finally:
            await engine.dispose()

    key = asyncio.run(signer())
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    now = int(time.time())
    claims.update(iat=now - ended_ago - 3600, nbf=now - ended_ago - 3600, exp=now - ended_ago, jti=str(uuid.uuid4()))
    return sign(claims, key.private, alg=key.alg, kid=key.kid, typ="at+jwt")
