"""Keyless: workload identity without shared secrets.

`pip install keyless` brings the client SDK (`keyless.client`) and the resource-side validator
(`keyless.verify`); `pip install 'keyless[server]'` adds the identity server, agent and CLI.
"""

__version__ = "0.1.0"
