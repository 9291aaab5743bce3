"""The identity server: `create_app(context)` wires protocol, directory and store behind HTTP routes."""
