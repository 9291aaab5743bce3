"""WorkloadIdentityCredential's configuration and its federated client authentication (sans-IO)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyless.client import CredentialError, WorkloadIdentityCredential
from keyless.client._base import federated_auth
from keyless.client.assertions import CLIENT_ASSERTION_TYPE


def test_the_token_file_is_read_for_every_request(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first.jwt.token\n")
    auth = federated_auth("client-1", token_file)
    assert auth.form(None) == {"client_id": "client-1", "client_assertion_type": CLIENT_ASSERTION_TYPE,
                               "client_assertion": "first.jwt.token"}
    token_file.write_text("rotated.jwt.token")  # the platform rotated it underneath us
    assert auth.form(None)["client_assertion"] == "rotated.jwt.token"
    assert "jwt" not in repr(auth) and not auth.needs_metadata


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read"), ("  \n", "does not hold a compact JWT"),
                                                 ("a.b.c" + "x" * 17000, "does not hold a compact JWT")])
def test_unreadable_or_bad_token_files_fail_clearly(tmp_path: Path, content: str | None, message: str) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    with pytest.raises(CredentialError, match=message):
        federated_auth("client-1", token_file).form(None)


def test_settings_come_from_the_azure_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t").write_text("x.y.z")
    for name, value in {"AZURE_TENANT_ID": "tenant-1", "AZURE_CLIENT_ID": "client-1",
                        "AZURE_FEDERATED_TOKEN_FILE": str(tmp_path / "t"),
                        "AZURE_AUTHORITY_HOST": "https://keyless.example:8443"}.items():
        monkeypatch.setenv(name, value)
    with WorkloadIdentityCredential() as cred:
        assert (cred.tenant_id, cred.client_id, cred.authority) == ("tenant-1", "client-1",
                                                                    "https://keyless.example:8443")


def test_missing_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="workload identity needs client_id, token_file_path, authority"):
        WorkloadIdentityCredential(tenant_id="t")
