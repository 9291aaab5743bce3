"""Federation with external issuers: trust rules and issuer key caching (issue 5)."""
