"""The secrets vault: versioned, envelope-encrypted secrets with soft-delete, per-vault access
grants, and backup/restore. Storage and HTTP live elsewhere (`keyless.store.vault`,
`keyless.server.vault`); this package holds the rules."""
