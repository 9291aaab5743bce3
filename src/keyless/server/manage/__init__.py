"""The management API: REST + OpenAPI, authorized by access tokens this server issued."""
