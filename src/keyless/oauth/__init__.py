"""OAuth 2.0 protocol core: request parsing, client authentication, grants, token minting, errors.

Knows no HTTP framework and no SQL: the server hands it a `TokenHttpRequest` and writes back what it
returns; storage is reached through `keyless.domain.ports`.
"""
