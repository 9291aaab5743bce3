"""The Keyless host agent (`keyless agent`): a separate process on each host.

It holds the host's credential (a key generated here that never leaves the host, with a certificate
from the server's CA), renews it, and hands short-lived tokens for the host's managed identities to
local workloads over Azure-IMDS- and App-Service-compatible HTTP endpoints on loopback and over a
Unix socket that identifies callers by their kernel peer credentials.

It talks to the server only over HTTPS, through `keyless.client` pieces; it never imports the
server, the store, the directory or the token service (import-linter contract).
"""
