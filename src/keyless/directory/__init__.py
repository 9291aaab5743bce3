"""Directory use cases (what the management API and CLI do) and the per-process read cache."""
