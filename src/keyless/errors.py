"""The root of every error Keyless raises on purpose.

Anything that is not a `KeylessError` reaching a request handler is a bug and is answered with a
generic 500 carrying a correlation id, never a traceback.
"""


class KeylessError(Exception):
    """Base class: callers can catch every deliberate Keyless failure with one clause."""


class ConfigurationError(KeylessError):
    """The process was started with settings or files that cannot work (bad permissions, missing keys)."""
