"""The unmodified Azure SDK for JavaScript (`@azure/identity`, `@azure/keyvault-secrets`, `@azure/msal-node`,
on Node 22, all pinned by tests/compat/js/package-lock.json) against a real Keyless server and agent
(issue 19, docs/compat.md).

Each test runs one `node tests/compat/js/sdk.js` process with a list of steps and asserts on what the
SDK returned or threw. Only configuration reaches the SDK: `authorityHost` and
`disableInstanceDiscovery`, environment variables, and the CA in `NODE_EXTRA_CA_CERTS`. Node and the
packages come from the npm registry on first use (tests/support/node.py); where that is impossible the
suite is skipped with the reason, except under CI, where it must run.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyless.verify import TokenValidator
from tests.support.agent import assigned_identity, host_with_resource, start_agent, stop_agent
from tests.support.certs import new_cert, register
from tests.support.issuer import ExternalIssuer, federated_app
from tests.support.node import NodeKit, NodeUnavailable, install
from tests.support.server import Admin, RunningServer
from tests.support.vault import new_user, new_vault

pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")

AUTH_ERROR = "AuthenticationRequiredError"
ROLE = "Data.Read"


@pytest.fixture(scope="session")
def node_kit() -> NodeKit:
    try:
        return install()
    except NodeUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the JavaScript compat suite: {exc}")
        pytest.skip(f"JavaScript compat suite not run: {exc}")


@pytest.fixture(scope="module")
def app(sqlite_server: RunningServer) -> dict[str, str]:
    """A resource with a role, and a client granted it with a secret and a registered certificate."""
    uri = f"api://js-{uuid.uuid4().hex[:10]}"
    with Admin(sqlite_server) as admin:
        client, secret = admin.client_with_role(uri, ROLE)
    return {"uri": uri, "client_id": client["client_id"], "object_id": client["object_id"], "secret": secret}


def node(kit: NodeKit, server: RunningServer, tmp: Path, steps: list[dict[str, Any]],
         env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    return kit.run(steps, kit.env(tmp, server.ca, env))


def ok(result: dict[str, Any]) -> Any:
    assert "ok" in result, result
    return result["ok"]


def claims_of(server: RunningServer, token: str, audience: str) -> dict[str, Any]:
    validator = TokenValidator(issuer=server.issuer, audience=audience, algorithms=["RS256"], ca=server.ca)
    try:
        return dict(validator.validate(token).claims)
    finally:
        validator.close()


def assert_auth_error(result: dict[str, Any], description: str = "client authentication failed (invalid_client)",
                      ) -> None:
    """What @azure/identity throws when the token endpoint refuses the client: its
    AuthenticationRequiredError wrapping MSAL's `invalid_client` (as against Entra), not a crash or hang."""
    assert "error" in result, result
    got = result["error"]
    assert (got["name"], got["errorCode"]) == (AUTH_ERROR, "invalid_client"), got
    assert f"Description: {description} -" in got["message"], got


def secret_cred(server: RunningServer, client_id: str, secret: str) -> dict[str, str]:
    return {"kind": "secret", "tenantId": server.tenant_id, "clientId": client_id, "secret": secret,
            "authorityHost": server.url}


# -- client secret, msal-node, DefaultAzureCredential ------------------------------------------------------

def test_client_secret_credential_and_its_wrong_secret(node_kit: NodeKit, sqlite_server: RunningServer,
                                                       app: dict[str, str], tmp_path: Path) -> None:
    scope = f"{app['uri']}/.default"
    good, bad = node(node_kit, sqlite_server, tmp_path, [
        {"op": "token", "scope": scope, "credential": secret_cred(sqlite_server, app["client_id"], app["secret"])},
        {"op": "token", "scope": scope, "credential": secret_cred(sqlite_server, app["client_id"], "wrong-secret")},
    ])
    token = ok(good)
    claims = claims_of(sqlite_server, token["token"], app["uri"])
    assert (claims["appid"], claims["sub"], claims["azpacr"], claims["roles"]) == (
        app["client_id"], app["object_id"], "1", [ROLE])
    assert token["cached"] is True
    assert abs(token["expiresOnTimestamp"] - claims["exp"] * 1000) <= 5000  # from expires_in, by the client's clock
    assert_auth_error(bad)


def test_default_azure_credential_from_environment(node_kit: NodeKit, sqlite_server: RunningServer,
                                                   app: dict[str, str], tmp_path: Path) -> None:
    env = {"AZURE_TENANT_ID": sqlite_server.tenant_id, "AZURE_CLIENT_ID": app["client_id"],
           "AZURE_CLIENT_SECRET": app["secret"], "AZURE_AUTHORITY_HOST": sqlite_server.url}
    [result] = node(node_kit, sqlite_server, tmp_path,
                    [{"op": "token", "scope": f"{app['uri']}/.default", "credential": {"kind": "default"}}], env)
    assert claims_of(sqlite_server, ok(result)["token"], app["uri"])["appid"] == app["client_id"]


def test_msal_node_confidential_client(node_kit: NodeKit, sqlite_server: RunningServer, app: dict[str, str],
                                       tmp_path: Path) -> None:
    authority = f"{sqlite_server.url}/{sqlite_server.tenant_id}"
    step = {"op": "msal", "clientId": app["client_id"], "authority": authority, "scopes": [f"{app['uri']}/.default"]}
    good, bad = node(node_kit, sqlite_server, tmp_path, [{**step, "secret": app["secret"]},
                                                         {**step, "secret": "wrong-secret"}])
    result = ok(good)
    assert (result["tokenType"], result["fromCache"], result["againFromCache"]) == ("Bearer", False, True)
    assert claims_of(sqlite_server, result["accessToken"], app["uri"])["appid"] == app["client_id"]
    assert "error" in bad, bad
    assert (bad["error"]["name"], bad["error"]["errorCode"]) == ("ServerError", "invalid_client"), bad


# -- certificates ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("chain", [False, True], ids=["pem", "send-certificate-chain"])
def test_client_certificate_credential(node_kit: NodeKit, sqlite_server: RunningServer, app: dict[str, str],
                                       tmp_path: Path, chain: bool) -> None:
    with Admin(sqlite_server) as admin:
        client_id = admin.app(f"js-cert-{uuid.uuid4().hex[:6]}")["client_id"]
        admin.grant(client_id, app["uri"], ROLE)
        cert = new_cert()
        register(sqlite_server, admin, client_id, cert)
    pem = tmp_path / "client.pem"
    pem.write_bytes(cert.key_pem + cert.cert_pem)
    stranger = tmp_path / "stranger.pem"
    other = new_cert(cn="not-registered")
    stranger.write_bytes(other.key_pem + other.cert_pem)
    spec = {"kind": "certificate", "tenantId": sqlite_server.tenant_id, "clientId": client_id,
            "authorityHost": sqlite_server.url, "sendCertificateChain": chain}
    scope = f"{app['uri']}/.default"
    good, bad = node(node_kit, sqlite_server, tmp_path, [
        {"op": "token", "scope": scope, "credential": {**spec, "certificatePath": str(pem)}},
        {"op": "token", "scope": scope, "credential": {**spec, "certificatePath": str(stranger)}},
    ])
    claims = claims_of(sqlite_server, ok(good)["token"], app["uri"])
    assert (claims["appid"], claims["azpacr"], claims["roles"]) == (client_id, "2", [ROLE])
    [head] = good["assertionHeaders"]  # one assertion: the second getToken was answered from the cache
    assert head["alg"] == "PS256"  # MSAL Node signs with RSASSA-PSS (Python msal: RS256)
    if chain:
        assert [base64.b64decode(c) for c in head["x5c"]] == [cert.der]
    else:
        assert "x5c" not in head and "x5t#S256" in head
    assert_auth_error(bad)


# -- managed identity through `keyless agent` --------------------------------------------------------------

@pytest.fixture(scope="module")
def mi(sqlite_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An enrolled agent; its system identity and a user-assigned identity may read the resource."""
    host, uri = host_with_resource(sqlite_server)
    with Admin(sqlite_server) as admin:
        user = assigned_identity(admin, host, uri, prefix="js")
    agent = start_agent(sqlite_server, tmp_path_factory.mktemp("js-agent"), join_token=host["join_token"], host=host)
    try:
        yield {"agent": agent, "uri": uri, "system": host["system_identity"], "user": user}
    finally:
        stop_agent(agent)


def assert_unavailable(result: dict[str, Any], error: str, description: str) -> None:
    """ManagedIdentityCredential reports a refusal by the managed-identity endpoint as unavailable,
    with the agent's error code and description."""
    assert "error" in result, result
    got = result["error"]
    assert (got["name"], got["errorCode"]) == ("CredentialUnavailableError", error), got
    assert f"Description: {description} -" in got["message"], got


def _mi_claims(server: RunningServer, result: dict[str, Any], uri: str, identity: dict[str, Any]) -> None:
    claims = claims_of(server, ok(result)["token"], uri)
    assert (claims["oid"], claims["xms_mirid"], claims["azpacr"], claims["roles"]) == (
        identity["object_id"], identity["resource_id"], "2", ["Orders.Read"])


def test_managed_identity_imds_style(node_kit: NodeKit, sqlite_server: RunningServer, mi: dict[str, Any],
                                     tmp_path: Path) -> None:
    scope = f"{mi['uri']}/.default"
    results = node(node_kit, sqlite_server, tmp_path, [
        {"op": "token", "scope": scope, "credential": {"kind": "managed"}},
        {"op": "token", "scope": scope, "credential": {"kind": "managed", "clientId": mi["user"]["client_id"]}},
        {"op": "token", "scope": scope, "credential": {"kind": "managed", "resourceId": mi["user"]["resource_id"]}},
        {"op": "token", "scope": scope, "credential": {"kind": "default"}},
        {"op": "token", "scope": scope, "credential": {"kind": "managed", "clientId": str(uuid.uuid4())}},
    ], {"AZURE_POD_IDENTITY_AUTHORITY_HOST": mi["agent"].url})
    for result, who in zip(results[:4], ("system", "user", "user", "system"), strict=True):
        _mi_claims(sqlite_server, result, mi["uri"], mi[who])
    assert_unavailable(results[4], "invalid_request", "Identity not found")  # an identity not on this host


def test_managed_identity_app_service_style(node_kit: NodeKit, sqlite_server: RunningServer, mi: dict[str, Any],
                                            tmp_path: Path) -> None:
    scope = f"{mi['uri']}/.default"
    env = {"IDENTITY_ENDPOINT": f"{mi['agent'].url}/msi/token", "IDENTITY_HEADER": mi["agent"].identity_header()}
    steps = [
        {"op": "token", "scope": scope, "credential": {"kind": "managed"}},
        {"op": "token", "scope": scope, "credential": {"kind": "managed", "clientId": mi["user"]["client_id"]}},
        {"op": "token", "scope": scope, "credential": {"kind": "managed", "resourceId": mi["user"]["resource_id"]}},
        {"op": "token", "scope": scope, "credential": {"kind": "default"}},
    ]
    results = node(node_kit, sqlite_server, tmp_path, steps, env)
    for result, who in zip(results, ("system", "user", "user", "system"), strict=True):
        _mi_claims(sqlite_server, result, mi["uri"], mi[who])
    [refused] = node(node_kit, sqlite_server, tmp_path, steps[:1], {**env, "IDENTITY_HEADER": "not-the-secret-" * 3})
    assert_unavailable(refused, "unauthorized", "X-IDENTITY-HEADER is missing or wrong")


# -- workload identity (a federated token file) ------------------------------------------------------------

@pytest.mark.parametrize("fed_server", ["sqlite"], indirect=True)
def test_workload_identity_credential_token_file(node_kit: NodeKit, fed_server: RunningServer,
                                                 issuer: ExternalIssuer, tmp_path: Path) -> None:
    subject = "system:serviceaccount:prod:orders"
    with Admin(fed_server) as admin:
        world = federated_app(admin, issuer.issuer, subject, audiences=["api://AzureADTokenExchange"])
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(issuer.token(subject, aud=["api://AzureADTokenExchange"]))
    wrong_file = tmp_path / "wrong-token"
    wrong_file.write_text(issuer.token("system:serviceaccount:prod:billing", aud=["api://AzureADTokenExchange"]))
    env = {"AZURE_FEDERATED_TOKEN_FILE": str(token_file), "AZURE_CLIENT_ID": world.client_id,
           "AZURE_TENANT_ID": fed_server.tenant_id, "AZURE_AUTHORITY_HOST": fed_server.url}
    explicit = {"kind": "workload", "tenantId": fed_server.tenant_id, "clientId": world.client_id,
                "authorityHost": fed_server.url}
    results = node(node_kit, fed_server, tmp_path, [
        {"op": "token", "scope": world.scope, "credential": {**explicit, "tokenFilePath": str(token_file)}},
        {"op": "token", "scope": world.scope, "credential": {"kind": "workload"}},
        {"op": "token", "scope": world.scope, "credential": {"kind": "default"}},
        {"op": "token", "scope": world.scope, "credential": {**explicit, "tokenFilePath": str(wrong_file)}},
    ], env)
    for result in results[:3]:
        claims = claims_of(fed_server, ok(result)["token"], world.resource)
        assert (claims["sub"], claims["appid"], claims["roles"]) == (world.object_id, world.client_id, [ROLE])
    assert_auth_error(results[3], "the token's subject matches no federated credential for its issuer")


# -- SecretClient --------------------------------------------------------------------------------------------

def test_secret_client_every_method_by_host_name(node_kit: NodeKit, sqlite_server: RunningServer,
                                                 tmp_path: Path) -> None:
    with Admin(sqlite_server) as admin:
        vault = new_vault(admin)
        user = new_user(admin, vault, ("Secrets.Officer", "Secrets.Purge"))
    url = f"https://{vault}.vault.localhost:{sqlite_server.vault_port}"
    [result] = node(node_kit, sqlite_server, tmp_path, [
        {"op": "vaultEveryMethod", "vaultUrl": url, "credential": secret_cred(sqlite_server, user.client_id,
                                                                            user.secret)},
    ])
    seen = ok(result)
    first, second = seen["firstVersion"], seen["secondVersion"]
    assert seen["first"] == {"value": "hunter2", "tags": {"env": "dev"}, "contentType": "text/plain", "vaultUrl": url}
    assert (seen["latest"], seen["firstByVersion"]) == ("hunter3", "hunter2")
    assert seen["updated"] == {"enabled": False, "tags": {"env": "old"}}
    assert (seen["disabledGet"]["name"], seen["disabledGet"]["statusCode"]) == ("RestError", 403)
    assert seen["pages"] == [["db-password", "extra-0"], ["extra-1", "extra-2"]]
    assert {v["version"] for v in seen["versions"]} == {first, second}
    assert [v for v in seen["versions"] if v["version"] == first] == [
        {"version": first, "enabled": False, "tags": {"env": "old"}}]
    assert seen["backupBytes"] > 0
    assert seen["deleted"] == {"name": "db-password", "recoveryId": True, "scheduledPurgeDate": True}
    assert (seen["getDeleted"], seen["listDeleted"]) == ("db-password", ["db-password"])
    assert (seen["getAfterDelete"]["statusCode"], seen["getAfterDelete"]["code"]) == (404, "SecretNotFound")
    assert (seen["recoveredVersion"], seen["afterRecover"]) == (second, "hunter3")
    assert seen["getDeletedAfterPurge"]["statusCode"] == 404
    assert seen["restored"] == {"name": "db-password", "version": second}
    assert seen["restoreAgain"]["statusCode"] == 409


def test_secret_client_default_vault_by_ip(node_kit: NodeKit, sqlite_server: RunningServer, tmp_path: Path) -> None:
    with Admin(sqlite_server) as admin:
        if "default" not in {v["name"] for v in admin.api.call("GET", "/vaults")}:
            admin.api.call("POST", "/vaults", json_body={"name": "default"})
        user = new_user(admin, "default")
    name = f"js-ip-{uuid.uuid4().hex[:8]}"
    [result] = node(node_kit, sqlite_server, tmp_path, [
        {"op": "vaultSetGet", "vaultUrl": sqlite_server.vault_url, "name": name, "value": "by-ip",
         "options": {"disableChallengeResourceVerification": True},
         "credential": secret_cred(sqlite_server, user.client_id, user.secret)},
    ])
    assert ok(result) == {"set": "by-ip", "got": "by-ip", "listed": True}


def test_secret_client_grants_decide_reader_and_stranger(node_kit: NodeKit, sqlite_server: RunningServer,
                                                         tmp_path: Path) -> None:
    with Admin(sqlite_server) as admin:
        vault = new_vault(admin)
        owner = new_user(admin, vault)
        reader = new_user(admin, vault, ("Secrets.Reader",))
        stranger = new_user(admin)
    url = f"https://{vault}.vault.localhost:{sqlite_server.vault_port}"
    owned, read, stranger_read, bad_secret = node(node_kit, sqlite_server, tmp_path, [
        {"op": "vaultSetGet", "vaultUrl": url, "name": "shared", "value": "v",
         "credential": secret_cred(sqlite_server, owner.client_id, owner.secret)},
        {"op": "vaultGet", "vaultUrl": url, "name": "shared",
         "credential": secret_cred(sqlite_server, reader.client_id, reader.secret)},
        {"op": "vaultGet", "vaultUrl": url, "name": "shared",
         "credential": secret_cred(sqlite_server, stranger.client_id, stranger.secret)},
        {"op": "vaultGet", "vaultUrl": url, "name": "shared",
         "credential": secret_cred(sqlite_server, reader.client_id, "wrong-secret")},
    ])
    assert ok(owned)["got"] == "v"
    assert ok(read) == "v"
    assert (stranger_read["error"]["name"], stranger_read["error"]["statusCode"]) == ("RestError", 404)
    assert_auth_error(bad_secret)
