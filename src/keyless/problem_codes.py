"""Every problem-detail `code` (RFC 9457 with a stable `code` member) the management API answers with:
the one registry scripts rely on (docs/cli.md: codes are a contract, only ever extended).

A code is raised where the refusal is decided (`Invalid("too_many_secrets", …)`, a vault error's
`problem`, the upload gate's `CertificateRejected`) and must be listed here;
tests/unit/test_error_family.py scans the source and fails on any code missing from this list. Never
rename or remove one: add a new code instead.
"""

from __future__ import annotations

# The HTTP shell, authentication and the exception handlers (keyless.server.manage).
_SERVER = frozenset({
    "body_too_large", "forbidden", "http_error", "internal_error", "invalid_cursor", "invalid_request",
    "invalid_token", "method_not_allowed", "not_a_jwt", "not_found", "unauthenticated", "validation_failed",
})

# Directory use cases (keyless.directory.errors: Invalid 400, NotFound 404, Conflict 409).
_DIRECTORY = frozenset({
    "ambiguous_name", "application_not_found", "assignment_not_found", "audience_is_a_resource",
    "audience_not_found", "binding_not_found", "certificate_exists", "certificate_lifetime_too_long",
    "certificate_not_found", "delivery_not_found", "duplicate_role", "federated_credential_exists",
    "federated_credential_not_found", "grant_conflict", "grant_not_found", "host_enrolled", "host_exists",
    "host_not_found", "identifier_uri_in_use", "identifier_uri_required", "identity_exists", "identity_not_found",
    "invalid_activation", "invalid_algorithms", "invalid_audience", "invalid_audience_mode",
    "invalid_certificate_lifetime", "invalid_description", "invalid_display_name", "invalid_duration",
    "invalid_host_name", "invalid_identifier_uri", "invalid_identity_name", "invalid_join_ttl", "invalid_location",
    "invalid_name", "invalid_owner", "invalid_replay", "invalid_role", "invalid_secret_lifetime",
    "invalid_selector", "invalid_signing_alg", "invalid_tenant_name", "invalid_token_lifetime",
    "invalid_webhook_url", "key_not_found", "last_signing_key", "managed_identity", "no_selector", "not_assigned",
    "protected_application", "resource_not_found", "role_exists", "role_not_found", "secret_not_found",
    "system_assigned", "tenant_exists", "tenant_not_found", "too_many_audiences", "too_many_bindings",
    "too_many_certificates", "too_many_federated_credentials", "too_many_roles", "too_many_secrets",
    "too_many_webhooks", "unknown_event_type", "webhook_not_found", "webhook_url_refused", "would_lock_out",
})

# Certificate uploads and CSRs (keyless.crypto: CertificateRejected, surfaced as `Invalid(code, …)`).
_CERTIFICATES = frozenset({
    "bad_csr", "bad_pkcs12", "bad_private_key", "bad_x5c", "certificate_expired", "curve_not_allowed",
    "key_size_not_allowed", "key_type_not_allowed", "multiple_certificates", "not_a_certificate",
    "password_required", "private_key_in_upload", "too_large",
})

# Federated credential rules (keyless.oauth.federation.rules: RuleError, surfaced as `Invalid(code, …)`).
_FEDERATION = frozenset({
    "invalid_condition", "invalid_issuer", "invalid_subject", "invalid_subject_pattern", "too_many_conditions",
})

# Credential policies (keyless.directory.policies): a write an enforced rule refuses answers with the
# rule's reason (`PolicyRefused`, built from keyless.domain.policies' violations), and the policy API's own.
_POLICIES = frozenset({
    "policy_changed", "policy_federated_lifetime", "policy_issuer_not_allowed", "policy_key_type",
    "policy_lifetime_exceeded", "policy_not_internal_ca", "policy_secret_blocked", "policies_unavailable",
})

# The web console's forms (keyless.server.console), where they refuse like the API.
_CONSOLE = frozenset({"invalid_alg", "invalid_policy"})

# The vault's native API (keyless.vault.errors: each error's `problem`).
_VAULT = frozenset({
    "secret_not_found", "secret_unreadable", "vault_bad_parameter", "vault_bad_request", "vault_conflict",
    "vault_forbidden", "vault_not_found", "vault_precondition_failed", "vault_value_too_large",
})

PROBLEM_CODES: frozenset[str] = _SERVER | _DIRECTORY | _CERTIFICATES | _FEDERATION | _POLICIES | _CONSOLE | _VAULT
