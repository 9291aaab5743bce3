"""The management API as a resource of its own tenant: its identifier and roles."""

from keyless.domain.model import MANAGEMENT_URI

__all__ = ["ADMIN_ROLE", "MANAGEMENT_URI", "READER_ROLE"]

ADMIN_ROLE = "Keyless.Admin"
READER_ROLE = "Keyless.Reader"
