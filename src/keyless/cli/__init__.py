"""The `keyless` command line: one module per noun; `main.app` wires them."""
