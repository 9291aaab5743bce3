"""Finding leaked Keyless client secrets (issue 14, docs/leaks.md).

`keyless.leaks.scanner` finds them offline, by format and checksum (`keyless.crypto.secrets`), in
files and in a git repository's history; `keyless.leaks.hook` is the pre-commit entry point. Neither
needs the server's dependencies: the hook installs with plain `pip install keyless`. Resolving a
finding against a server (is it live, whose is it, revoke it) is the CLI's job (`keyless scan`).
"""
