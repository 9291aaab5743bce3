"""The web console under `/console/` (issue 15, docs/console.md)."""
