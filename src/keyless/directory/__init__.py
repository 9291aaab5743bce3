"""Directory use cases (what the management API and CLI do), one module per aggregate over its port
in `keyless.domain.ports`; `service.DirectoryService` combines them for the server's wiring."""
