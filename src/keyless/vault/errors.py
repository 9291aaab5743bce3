"""Vault errors. Each carries a Key Vault-style `code` (what `azure-keyvault-secrets` shows), a
stable snake-case `problem` code for the native API, and an HTTP status. The message goes on the wire
(Key Vault `message`, problem `detail`), so it is held to RFC 6749 §5.2's set here (keyless.text)."""

from __future__ import annotations

from keyless import text
from keyless.errors import KeylessError


class VaultError(KeylessError):
    status = 400
    code = "BadParameter"
    problem = "vault_bad_request"

    def __init__(self, message: str) -> None:
        self.message = text.description(message)
        super().__init__(self.message)


class BadParameter(VaultError):
    status = 400
    code = "BadParameter"
    problem = "vault_bad_parameter"


class SecretNotFound(VaultError):
    """Also the answer for a secret the caller may not see (anti-enumeration, catalog G04)."""

    status = 404
    code = "SecretNotFound"
    problem = "secret_not_found"


class VaultNotFound(VaultError):
    status = 404
    code = "VaultNotFound"
    problem = "vault_not_found"


class Forbidden(VaultError):
    status = 403
    code = "Forbidden"
    problem = "vault_forbidden"


class VaultConflict(VaultError):
    status = 409
    code = "Conflict"
    problem = "vault_conflict"


class PreconditionFailed(VaultError):
    status = 412
    code = "PreconditionFailed"
    problem = "vault_precondition_failed"


class TooLarge(VaultError):
    status = 413
    code = "RequestTooLarge"
    problem = "vault_value_too_large"


class Unreadable(VaultError):
    """A stored value failed authentication: tampered, moved between rows, or the wrong key. The value
    is never returned; the event is logged for the operator."""

    status = 500
    code = "SecretUnreadable"
    problem = "secret_unreadable"
