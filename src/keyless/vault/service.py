"""Vault use cases, shared by the Key Vault-compatible API, the native API and the CLI: the management
plane (vaults, grants, key rotation; keyless.vault.management) and the data plane (secrets;
keyless.vault.secrets) over one shared core (caches, keys, access; keyless.vault.core)."""

from __future__ import annotations

from keyless.vault.core import DEFAULT_PAGE, MAX_PAGE, REWRAP_BATCH, SEALED_CACHE, new_version_id
from keyless.vault.management import VaultManagement
from keyless.vault.secrets import SecretsPlane

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "REWRAP_BATCH", "SEALED_CACHE", "VaultService", "new_version_id"]


class VaultService(VaultManagement, SecretsPlane):
    """Both planes of the vault over one core: what the server holds as `ctx.vaults`."""
