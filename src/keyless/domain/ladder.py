"""The credential ladder's names: its rungs and the risk factors (docs/ladder.md).

Apart from `keyless.domain.posture` (the rules) so that what only needs the names, the CLI's
`keyless posture` choices above all, does not load the rules and the credential model with them
(each CLI run pays for what it imports)."""

from __future__ import annotations

from typing import Literal

Rung = Literal["none", "secret", "certificate", "federated", "managed_identity"]
# Bottom to top; "none" is a principal with no working credential (a resource API, a retired app).
RUNGS: tuple[Rung, ...] = ("secret", "certificate", "federated", "managed_identity")

Risk = Literal[
    "leaked", "long_lived_secret", "secret_never_rotated", "several_active_secrets", "secret_many_addresses",
    "certificate_not_internal_ca", "expiring_soon", "broad_federation_subject", "unused",
]
RISKS: tuple[Risk, ...] = (
    "leaked", "long_lived_secret", "secret_never_rotated", "several_active_secrets", "secret_many_addresses",
    "certificate_not_internal_ca", "expiring_soon", "broad_federation_subject", "unused",
)
