"""One module per grant type, each with a class naming its `grant_type` wire string; the registry
(`keyless.oauth.grants.registry`) holds them by that string."""
