"""What a vault backup holds, and where it may be restored (issue 11 item 7, docs/vault.md "Backup and
restore", docs/security.md "Backups are bound to where they came from").

A backup blob is sealed under a key of the tenant (`envelope.seal_backup`), so it never leaves its tenant.
Inside it, format 2 names the vault it came from (id and name). Restoring into that same vault needs
Secrets.Restore there, as in Key Vault. Restoring into any other vault also needs, on the secret in its
origin vault and checked again at restore time, Secrets.Backup and Secrets.Get: the caller could read the
value there anyway, so moving it gives nothing away. Backup alone is not enough, since Backup is exactly
what a role that may only back a secret up holds; it would become the plaintext in a vault the caller
controls. Key Vault binds a backup to
its subscription and geography for the same reason. Format-1 blobs (made before this binding) name no
origin and are refused: nothing would say whether their maker could read them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keyless.vault import model as m
from keyless.vault import names
from keyless.vault.errors import BadParameter, Forbidden

FORMAT = 2


class ForeignBackup(Forbidden):
    """A blob from another vault, and the caller does not (or no longer) hold `ORIGIN_ROLES` there."""

    problem = "vault_backup_from_another_vault"


ORIGIN_ROLES = frozenset({m.BACKUP, m.GET})
FOREIGN = ("the backup comes from another vault: restoring it here needs Secrets.Backup and Secrets.Get on "
           "the secret in the vault it came from")
OLD_FORMAT = "the backup predates origin binding (format 1) and cannot be restored; back the secret up again"


@dataclass(frozen=True)
class Contents:
    origin_id: str
    origin_name: str
    name: str
    entries: Sequence[dict[str, Any]]


def pack(vault: m.Vault, name: str, entries: Sequence[dict[str, Any]]) -> bytes:
    return json.dumps({"format": FORMAT, "vault_id": vault.id, "vault": vault.name, "name": name,
                       "versions": list(entries)}).encode()


def entry(s: m.SealedVersion, value: bytes) -> dict[str, Any]:
    a = s.version.attributes
    return {"version": s.version.version, "value": value.decode(), "enabled": a.enabled, "nbf": a.not_before,
            "exp": a.expires, "contentType": a.content_type, "tags": a.tags, "created": s.version.created_at,
            "updated": s.version.updated_at}


def unpack(raw: bytes) -> Contents:
    try:
        data = json.loads(raw)
        if data.get("format") == 1:
            raise BadParameter(OLD_FORMAT)
        entries = data["versions"]
        origin_id, origin_name = data["vault_id"], data["vault"]
        if (data.get("format") != FORMAT or not isinstance(entries, list) or not entries
                or not isinstance(origin_id, str) or not isinstance(origin_name, str)):
            raise ValueError
        return Contents(origin_id, origin_name, names.secret_name(data["name"]), entries)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadParameter("the backup blob does not hold a secret") from None
