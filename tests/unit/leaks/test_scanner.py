"""The offline scanner over a real git repository made in the test: secrets in working files, in
deleted history and in a binary file are found; prefix-shaped strings with a wrong checksum are not
(catalog O09: no output names a secret, only its hint and location)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from keyless.crypto.secrets import new_client_secret
from keyless.leaks import hook
from keyless.leaks.scanner import Finding, ScanError, find_in_bytes, scan, scan_files
from tests.support.gitrepo import git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")




def wrong_checksum(secret: str) -> str:
    last = secret[-1]
    return secret[:-1] + ("A" if last != "A" else "B")


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A repository whose history holds a deleted secret, and whose work tree holds a secret in a
    text file (line 3), one in a binary file, and a prefix-shaped string with a bad checksum."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    secrets = {"deleted": new_client_secret(), "working": new_client_secret(), "binary": new_client_secret()}
    (root / "old.env").write_text(f"CLIENT_SECRET={secrets['deleted']}\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "add config")
    introduced = git(root, "rev-parse", "HEAD")
    (root / "old.env").unlink()
    (root / "README").write_text("nothing here\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "remove the secret")
    (root / "src").mkdir()
    (root / "src" / "settings.py").write_text(
        f'# config\nNAME = "x"\nSECRET = "{secrets["working"]}"\nNOT = "{wrong_checksum(new_client_secret())}"\n'
    )
    (root / "blob.bin").write_bytes(b"\x00\xff\x10" * 100 + b"\\n" + secrets["binary"].encode() + b"\x00\x01")
    secrets["introduced"] = introduced
    return root, secrets


def test_working_files_text_and_binary(repo: tuple[Path, dict[str, str]]) -> None:
    root, secrets = repo
    result = scan([root])
    found = {f.secret: f for f in result.findings}
    assert set(found) == {secrets["working"], secrets["binary"]}
    assert found[secrets["working"]].path == str(root / "src" / "settings.py")
    assert found[secrets["working"]].line == 3
    assert found[secrets["working"]].commit is None
    assert found[secrets["binary"]].path == str(root / "blob.bin")


def test_deleted_history_is_found_with_its_commit(repo: tuple[Path, dict[str, str]]) -> None:
    root, secrets = repo
    result = scan([root / "src"], git=True)  # a path inside the work tree finds the repository
    history = [f for f in result.findings if f.commit is not None]
    assert [(f.secret, f.path, f.line, f.commit) for f in history] == [
        (secrets["deleted"], "old.env", 1, secrets["introduced"])
    ]
    assert result.blobs_scanned >= 2
    assert secrets["working"] in result.secrets()  # the working files under the path, too
    assert secrets["binary"] not in result.secrets()  # not under src/, not committed


def test_binary_blob_in_history(repo: tuple[Path, dict[str, str]]) -> None:
    root, secrets = repo
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "more")
    result = scan([root], git=True)
    in_history = {f.secret for f in result.findings if f.commit}
    assert in_history == {secrets["deleted"], secrets["working"], secrets["binary"]}


def test_wrong_checksum_is_not_a_secret() -> None:
    real = new_client_secret()
    fakes = [wrong_checksum(new_client_secret()) for _ in range(50)]
    fakes.append("kls_" + "A" * 49)
    data = ("\n".join(fakes) + "\n" + real).encode()
    assert [s for s, _ in find_in_bytes(data)] == [real]
    assert list(find_in_bytes("\n".join(fakes).encode())) == []


def test_large_files_are_skipped_and_reported(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_bytes(b"x" * 2000 + new_client_secret().encode())
    result = scan_files([tmp_path], max_bytes=1000)
    assert result.findings == []
    assert [(s.path, s.reason) for s in result.skipped] == [(str(big), "larger than 1000 bytes")]


def test_large_blobs_in_history_are_skipped_and_reported(repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    (root / "huge.dat").write_bytes(b"y" * 5000)
    git(root, "add", "huge.dat")
    git(root, "commit", "-q", "-m", "big")
    result = scan([root], git=True, max_bytes=4096)
    assert any(s.path.endswith(":huge.dat") and "blob larger" in s.reason for s in result.skipped)


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "s.txt").write_text(new_client_secret())
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link").symlink_to(outside, target_is_directory=True)
    (tree / "file-link").symlink_to(outside / "s.txt")
    assert scan_files([tree]).findings == []


def test_not_a_repository_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="no such file"):
        scan([tmp_path / "absent"])
    with pytest.raises(ScanError):
        scan([tmp_path], git=True)


def test_finding_repr_never_holds_the_secret() -> None:
    secret = new_client_secret()
    finding = Finding(secret, "a.txt", 3)
    assert secret not in repr(finding)
    assert finding.location == "a.txt:3"
    assert finding.hint == secret[4:7]


def test_hook_exit_codes_and_output_hide_the_secret(repo: tuple[Path, dict[str, str]],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root, secrets = repo
    assert hook.main([str(root / "README")]) == 0
    assert hook.main([]) == 0
    assert hook.main([str(root), "--git"]) == 1
    out, err = capsys.readouterr()
    for value in ("deleted", "working", "binary"):
        assert secrets[value] not in out + err
    assert f"kls_{secrets['working'][4:7]}…" in out
    assert hook.main([str(root), "-o", "json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert {f["hint"] for f in body["findings"]} == {secrets["working"][4:7], secrets["binary"][4:7]}
    assert hook.main([str(root / "absent")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
