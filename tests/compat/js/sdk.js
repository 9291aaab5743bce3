"use strict";
// Drives the unmodified Azure SDK for JavaScript for tests/compat/test_js_sdk.py.
//
// Reads one JSON plan on stdin ({"steps": [...]}), runs the steps in order and writes one JSON line on
// stdout: {"results": [...], "foreign": [...]}. Each result is {"ok": ...} or {"error": {...}}, so the
// Python test asserts on what the SDK returned or threw. Only configuration is given to the SDK (an
// authority host, disableInstanceDiscovery, environment variables, the CA in NODE_EXTRA_CA_CERTS).
//
// As in tests/compat/conftest.py, name resolution is limited to loopback: a name under .localhost is
// 127.0.0.1 (RFC 6761 §6.3), any other name fails and is reported in "foreign", so "works offline
// against Keyless" is asserted, not assumed.

const dns = require("node:dns");

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);
const foreign = [];
const realLookup = dns.lookup;
dns.lookup = function guardedLookup(hostname, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  if (hostname.endsWith(".localhost")) {
    return realLookup.call(dns, "127.0.0.1", options, callback);
  }
  if (!LOOPBACK.has(hostname)) {
    foreign.push(hostname);
    const err = new Error(`compat tests may not leave loopback (${hostname})`);
    err.code = "ENOTFOUND";
    process.nextTick(callback, err);
    return undefined;
  }
  return realLookup.call(dns, hostname, options, callback);
};

// The JOSE header of every client assertion the SDK sends, per step, so a test can check what went on
// the wire (x5c with sendCertificateChain) without a proxy. Installed before the SDK is loaded.
const https = require("node:https");
let assertionHeaders = [];
const realRequest = https.request;
https.request = function recordingRequest(...args) {
  const req = realRequest.apply(this, args);
  const chunks = [];
  const write = req.write;
  const end = req.end;
  const keep = (chunk) => {
    if (typeof chunk === "string" || chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
  };
  req.write = function (chunk, ...rest) {
    keep(chunk);
    return write.call(this, chunk, ...rest);
  };
  req.end = function (chunk, ...rest) {
    keep(chunk);
    const assertion = new URLSearchParams(Buffer.concat(chunks).toString("utf8")).get("client_assertion");
    if (assertion) {
      try {
        assertionHeaders.push(JSON.parse(Buffer.from(assertion.split(".")[0], "base64url")));
      } catch {
        assertionHeaders.push({ unreadable: true });
      }
    }
    return end.call(this, chunk, ...rest);
  };
  return req;
};

const identity = require("@azure/identity");
const { SecretClient } = require("@azure/keyvault-secrets");
const msal = require("@azure/msal-node");

const POLL = { updateIntervalInMs: 50 };

function credential(spec) {
  const common = { authorityHost: spec.authorityHost, disableInstanceDiscovery: true };
  switch (spec.kind) {
    case "secret":
      return new identity.ClientSecretCredential(spec.tenantId, spec.clientId, spec.secret, common);
    case "certificate":
      return new identity.ClientCertificateCredential(spec.tenantId, spec.clientId,
        { certificatePath: spec.certificatePath }, { ...common, sendCertificateChain: !!spec.sendCertificateChain });
    case "managed":
      if (spec.clientId) return new identity.ManagedIdentityCredential({ clientId: spec.clientId });
      if (spec.resourceId) return new identity.ManagedIdentityCredential({ resourceId: spec.resourceId });
      return new identity.ManagedIdentityCredential();
    case "workload":
      return spec.tokenFilePath
        ? new identity.WorkloadIdentityCredential({ ...common, tenantId: spec.tenantId, clientId: spec.clientId,
          tokenFilePath: spec.tokenFilePath })
        : new identity.WorkloadIdentityCredential({ disableInstanceDiscovery: true });
    case "default":
      return new identity.DefaultAzureCredential({ disableInstanceDiscovery: true });
    default:
      throw new Error(`unknown credential kind ${spec.kind}`);
  }
}

async function token(step) {
  const cred = credential(step.credential);
  const first = await cred.getToken(step.scope);
  const again = await cred.getToken(step.scope);
  return { token: first.token, expiresOnTimestamp: first.expiresOnTimestamp, cached: again.token === first.token };
}

async function msalClientCredential(step) {
  const app = new msal.ConfidentialClientApplication({
    auth: { clientId: step.clientId, authority: step.authority, clientSecret: step.secret,
      knownAuthorities: [step.authority] },
  });
  const first = await app.acquireTokenByClientCredential({ scopes: step.scopes });
  const again = await app.acquireTokenByClientCredential({ scopes: step.scopes });
  return { accessToken: first.accessToken, tokenType: first.tokenType, fromCache: first.fromCache,
    againFromCache: again.fromCache, expiresOn: first.expiresOn ? first.expiresOn.getTime() : null };
}

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (err) {
    return { name: err.name, statusCode: err.statusCode ?? null, code: err.code ?? null };
  }
}

async function names(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item.name);
  return out;
}

// Every SecretClient method that tests/compat/test_keyvault_secrets.py covers, in the same order.
async function vaultEveryMethod(step) {
  const client = new SecretClient(step.vaultUrl, credential(step.credential), step.options || {});
  const seen = {};
  const first = await client.setSecret("db-password", "hunter2", { tags: { env: "dev" }, contentType: "text/plain" });
  seen.first = { value: first.value, tags: first.properties.tags, contentType: first.properties.contentType,
    vaultUrl: first.properties.vaultUrl };
  const second = await client.setSecret("db-password", "hunter3", { enabled: true });
  seen.latest = (await client.getSecret("db-password")).value;
  seen.firstByVersion = (await client.getSecret("db-password", { version: first.properties.version })).value;
  const updated = await client.updateSecretProperties("db-password", first.properties.version,
    { enabled: false, tags: { env: "old" } });
  seen.updated = { enabled: updated.enabled, tags: updated.tags };
  seen.disabledGet = await failure(client.getSecret("db-password", { version: first.properties.version }));
  for (let i = 0; i < 3; i++) await client.setSecret(`extra-${i}`, "x");
  const pages = [];
  for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 2 })) {
    pages.push(page.map((p) => p.name));
  }
  seen.pages = pages;
  const versions = [];
  for await (const page of client.listPropertiesOfSecretVersions("db-password").byPage({ maxPageSize: 1 })) {
    versions.push(...page.map((p) => ({ version: p.version, enabled: p.enabled, tags: p.tags })));
  }
  seen.versions = versions;
  seen.firstVersion = first.properties.version;
  seen.secondVersion = second.properties.version;
  const backup = await client.backupSecret("db-password");
  seen.backupBytes = backup ? backup.length : 0;
  const deleted = await (await client.beginDeleteSecret("db-password", POLL)).pollUntilDone();
  seen.deleted = { name: deleted.name, recoveryId: !!deleted.recoveryId,
    scheduledPurgeDate: deleted.scheduledPurgeDate instanceof Date };
  seen.getDeleted = (await client.getDeletedSecret("db-password")).name;
  seen.listDeleted = await names(client.listDeletedSecrets());
  seen.getAfterDelete = await failure(client.getSecret("db-password"));
  const recovered = await (await client.beginRecoverDeletedSecret("db-password", POLL)).pollUntilDone();
  seen.recoveredVersion = recovered.version;
  seen.afterRecover = (await client.getSecret("db-password")).value;
  await (await client.beginDeleteSecret("db-password", POLL)).pollUntilDone();
  await client.purgeDeletedSecret("db-password");
  seen.getDeletedAfterPurge = await failure(client.getDeletedSecret("db-password"));
  const restored = await client.restoreSecretBackup(backup);
  seen.restored = { name: restored.name, version: restored.version };
  seen.restoreAgain = await failure(client.restoreSecretBackup(backup));
  return seen;
}

async function vaultSetGet(step) {
  const client = new SecretClient(step.vaultUrl, credential(step.credential), step.options || {});
  const set = await client.setSecret(step.name, step.value);
  const got = await client.getSecret(step.name);
  return { set: set.value, got: got.value, listed: (await names(client.listPropertiesOfSecrets())).includes(step.name) };
}

async function vaultGet(step) {
  const client = new SecretClient(step.vaultUrl, credential(step.credential), step.options || {});
  return (await client.getSecret(step.name)).value;
}

const OPS = { token, msal: msalClientCredential, vaultEveryMethod, vaultSetGet, vaultGet };

async function run(step) {
  assertionHeaders = [];
  try {
    return { ok: await OPS[step.op](step), assertionHeaders };
  } catch (err) {
    // The SDK's error as a caller sees it: its class and codes, never a stack of ours.
    return { error: { name: err.name, statusCode: err.statusCode ?? null, code: err.code ?? null,
      errorCode: err.errorResponse?.error ?? err.errorCode ?? err.cause?.errorCode ?? null,
      message: String(err.message).slice(0, 500) }, assertionHeaders };
  }
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const plan = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const results = [];
  for (const step of plan.steps) results.push(await run(step));
  process.stdout.write(JSON.stringify({ results, foreign }) + "\n");
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`driver failed: ${err && err.stack}\n`);
  process.exit(2);
});
