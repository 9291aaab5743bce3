"""The Key Vault-compatible secrets API (compat §5, §7), served at the root of its own HTTPS port."""
