"""The management API as a resource of its own tenant: its identifier and roles."""

MANAGEMENT_URI = "urn:keyless:management"
ADMIN_ROLE = "Keyless.Admin"
READER_ROLE = "Keyless.Reader"
