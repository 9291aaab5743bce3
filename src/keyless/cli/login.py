"""`keyless login` / `keyless logout`: a developer's own identity for `DefaultCredential`.

Keyless has no user sign-in; what a developer needs on a workstation is an application identity of
their own (made by an admin, granted what development needs — not production's roles), whose key is
made on the workstation and never leaves it. `keyless login APP` makes that key pair, registers only
its certificate (short-lived: 30 days by default) and writes a developer profile that
`keyless.client.DefaultCredential` uses as its last link; `keyless logout` revokes the certificate
and deletes the profile.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from keyless.cli.certs import AppArg, _create_private, _create_public, _register
from keyless.cli.common import Output, emit, fail
from keyless.cli.options import Shared, shared
from keyless.client.default import DEVELOPER_CERTIFICATE, DEVELOPER_KEY, developer_profile_path


@shared(Output.json)
def login(
    app_ref: AppArg,
    days: Annotated[int, typer.Option("--days", min=1, max=90, help="Lifetime of the certificate.")] = 30,
    *, opts: Shared,
) -> None:
    """Become APP on this workstation for DefaultCredential: make a key pair here, register only its
    certificate on APP, and write the developer profile (KEYLESS_DEVELOPER_PROFILE, default
    ~/.config/keyless/developer.json; key file 0600).

    Example: keyless login alice-dev --days 14
    """
    profile = developer_profile_path()
    folder = profile.parent
    if profile.exists():
        fail(f"{profile} exists: already logged in (keyless logout first)")
    api = opts.client()
    found = api.resolve_app(app_ref)
    if found.get("managed_resource_id"):
        fail("a managed identity cannot be a developer login: choose an application")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in (DEVELOPER_KEY, DEVELOPER_CERTIFICATE):
        if (folder / name).exists():
            fail(f"{folder / name} exists: refusing to overwrite it (keyless logout, or remove it)")
    key_pem, record, cert_pem = _register(api, found, "p256", use_ca=False, days=days, name="developer login")
    _create_private(folder / DEVELOPER_KEY, key_pem)
    _create_public(folder / DEVELOPER_CERTIFICATE, cert_pem)
    trust = api.target.ca
    content: dict[str, Any] = {
        "tenant": api.target.tenant, "client_id": found["client_id"], "authority": api.target.server,
        "ca": str(Path(trust).resolve()) if isinstance(trust, str) else None,
        "certificate": DEVELOPER_CERTIFICATE, "private_key": DEVELOPER_KEY, "certificate_id": record["id"],
    }
    _create_private(profile, json.dumps(content, indent=2).encode() + b"\n")
    emit({"profile": str(profile), "client_id": found["client_id"], "display_name": found["display_name"],
          "certificate_id": record["id"], "not_after": record["not_after"]}, opts.output)


@shared(None)
def logout(*, opts: Shared) -> None:
    """Revoke the developer login's certificate and delete the developer profile and its key.

    Example: keyless logout
    """
    profile = developer_profile_path()
    try:
        content = json.loads(profile.read_text())
    except FileNotFoundError:
        fail(f"not logged in ({profile} does not exist)")
    except (OSError, ValueError) as exc:
        fail(f"cannot read {profile}: {exc}")
    api = opts.client()
    api.call("DELETE", f"/applications/{quote(content['client_id'], safe='')}/certificates/"
                       f"{quote(content['certificate_id'], safe='')}")
    for path in (profile.parent / content.get("private_key", DEVELOPER_KEY),
                 profile.parent / content.get("certificate", DEVELOPER_CERTIFICATE), profile):
        path.unlink(missing_ok=True)
    typer.echo("logged out: certificate revoked, profile and key deleted", err=True)
