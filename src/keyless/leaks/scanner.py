"""Find Keyless client secrets in files and in git history, offline.

A candidate is `kls_` followed by 49 base62 characters whose last six are the CRC32 of the rest
(`keyless.crypto.secrets`): random text passes the checksum with probability 2^-32, so a match is a
Keyless secret, not a guess. No word boundary is required around it: escaped strings (`"\\nkls_…"`)
and concatenations are where boundary rules miss real secrets, and the checksum already keeps the
false positives out.

Bounds: a file larger than `max_bytes` is not read but reported as skipped (never silently passed);
binary files are scanned as bytes (a secret in a compiled or packed file is still a leak). Git history
is read through the `git` command (every blob reachable from any ref, each read once through
`git cat-file --batch`), never by parsing `.git` by hand.

A `Finding` carries the secret for the caller that must resolve it against a server, but its `repr`
and every rendering of it show only the hint, as the CLI shows secrets elsewhere (catalog O09).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from keyless.crypto import secrets as secret_format
from keyless.errors import KeylessError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_CANDIDATE = re.compile(rb"kls_[0-9A-Za-z]{49}")
_SKIP_DIRS = frozenset({".git", ".hg", ".svn"})
GIT_TIMEOUT = 600.0


class ScanError(KeylessError):
    """A path cannot be scanned as asked (missing, not a git repository, git absent)."""


@dataclass(frozen=True)
class Finding:
    """One occurrence of a checksum-valid Keyless secret. `commit` is set for a blob found in git
    history: the oldest commit (on any ref) that contains it there."""

    secret: str = field(repr=False)
    path: str
    line: int
    commit: str | None = None

    @property
    def hint(self) -> str:
        return secret_format.hint(self.secret)

    @property
    def location(self) -> str:
        """Where, never what: `path:line` or `commit:path:line`."""
        where = f"{self.path}:{self.line}"
        return f"{self.commit}:{where}" if self.commit else where


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files_scanned: int = 0
    blobs_scanned: int = 0

    def secrets(self) -> dict[str, list[Finding]]:
        """The distinct secrets found, each with every place it was seen (first-seen order)."""
        grouped: dict[str, list[Finding]] = {}
        for f in self.findings:
            grouped.setdefault(f.secret, []).append(f)
        return grouped


def find_in_bytes(data: bytes) -> Iterator[tuple[str, int]]:
    """(secret, line number) of every checksum-valid secret in `data`; prefix-shaped strings with a
    wrong checksum are not secrets and are not reported."""
    line, counted_to = 1, 0
    for m in _CANDIDATE.finditer(data):
        candidate = m.group().decode("ascii")
        if not secret_format.has_valid_checksum(candidate):
            continue
        line += data.count(b"\n", counted_to, m.start())
        counted_to = m.start()
        yield candidate, line


def _walk(root: Path) -> Iterator[Path]:
    """Regular files under `root`, never following symbolic links (a link out of the tree would
    scan files the caller did not name) and never into a VCS's own directory."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            yield Path(dirpath) / name


def scan_files(paths: Iterable[Path], *, max_bytes: int = DEFAULT_MAX_BYTES,
               result: ScanResult | None = None) -> ScanResult:
    """Scan files, and every file under directories, as they are on disk now."""
    result = result if result is not None else ScanResult()
    for root in paths:
        if not root.exists() and not root.is_symlink():
            raise ScanError(f"{root}: no such file or directory")
        for path in _walk(root) if root.is_dir() else iter([root]):
            _scan_file(path, max_bytes, result)
    return result


def _scan_file(path: Path, max_bytes: int, result: ScanResult) -> None:
    if path.is_symlink() or not path.is_file():
        return
    try:
        size = path.stat().st_size
        if size > max_bytes:
            result.skipped.append(Skipped(str(path), f"larger than {max_bytes} bytes"))
            return
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        result.skipped.append(Skipped(str(path), exc.strerror or "unreadable"))
        return
    if len(data) > max_bytes:  # grew while we looked
        result.skipped.append(Skipped(str(path), f"larger than {max_bytes} bytes"))
        return
    result.files_scanned += 1
    result.findings.extend(Finding(secret, str(path), line) for secret, line in find_in_bytes(data))


# -- git history ----------------------------------------------------------------------------------

def _git() -> str:
    git = shutil.which("git")
    if git is None:
        raise ScanError("--git needs the `git` command on PATH")
    return git


def _run_git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [_git(), "-C", str(repo), *args], input=stdin, capture_output=True, timeout=GIT_TIMEOUT, check=False,
        )
    except subprocess.TimeoutExpired:
        raise ScanError(f"{repo}: git {args[0]} took longer than {GIT_TIMEOUT:.0f}s") from None
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ScanError(f"{repo}: git {args[0]} failed: {message[0] if message else proc.returncode}")
    return proc.stdout


def repository_root(path: Path) -> Path:
    """The top of the work tree (or the git directory of a bare repository) holding `path`."""
    start = path if path.is_dir() else path.parent
    out = _run_git(start, "rev-parse", "--is-bare-repository", "--show-toplevel").decode().splitlines()
    if out and out[0] == "true":
        return start
    if len(out) < 2:
        raise ScanError(f"{path}: not inside a git work tree")
    return Path(out[1])


def _history_blobs(repo: Path) -> dict[str, tuple[str, int]]:
    """Blob id → (a path it had, its size), for every blob reachable from any ref (branches, tags,
    remotes)."""
    out = _run_git(repo, "rev-list", "--all", "--objects")
    objects: dict[str, str] = {}
    for raw in out.splitlines():
        sha, _, path = raw.decode("utf-8", "surrogateescape").partition(" ")
        if path:
            objects.setdefault(sha, path)
    if not objects:
        return {}
    checked = _run_git(repo, "cat-file", "--batch-check", stdin="\n".join(objects).encode() + b"\n")
    blobs: dict[str, tuple[str, int]] = {}
    for line in checked.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "blob":
            blobs[parts[0]] = (objects[parts[0]], int(parts[2]))
    return blobs


def _read_blobs(repo: Path, shas: list[str]) -> Iterator[tuple[str, bytes]]:
    """Stream blob contents through one `git cat-file --batch` process."""
    if not shas:
        return
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [_git(), "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        assert proc.stdin is not None
        try:
            for sha in shas:
                proc.stdin.write(sha.encode() + b"\n")
            proc.stdin.close()
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        for _ in shas:
            header = proc.stdout.readline().split()
            if len(header) != 3:
                raise ScanError(f"{repo}: git cat-file answered unexpectedly")
            size = int(header[2])
            data = proc.stdout.read(size)
            proc.stdout.read(1)  # the newline after each object
            yield header[0].decode(), data
    finally:
        proc.stdout.close()
        proc.wait(timeout=GIT_TIMEOUT)
        writer.join(timeout=5)


def _introducing_commit(repo: Path, blob: str) -> str | None:
    """The oldest commit on any ref whose diff adds or removes this blob: where it came in."""
    out = _run_git(repo, "log", "--all", "--format=%H", f"--find-object={blob}").decode().split()
    return out[-1] if out else None


def scan_git_history(repo: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, result: ScanResult | None = None) -> ScanResult:
    """Every blob in the repository's history, deleted files included, each read once."""
    result = result if result is not None else ScanResult()
    root = repository_root(repo)
    blobs = _history_blobs(root)
    wanted = []
    for sha, (path, size) in blobs.items():
        if size > max_bytes:
            result.skipped.append(Skipped(f"{sha}:{path}", f"blob larger than {max_bytes} bytes"))
        else:
            wanted.append(sha)
    for sha, data in _read_blobs(root, wanted):
        result.blobs_scanned += 1
        found = list(find_in_bytes(data))
        if not found:
            continue
        commit = _introducing_commit(root, sha)
        result.findings.extend(Finding(secret, blobs[sha][0], line, commit or sha) for secret, line in found)
    return result


def scan(paths: Iterable[Path], *, git: bool = False, max_bytes: int = DEFAULT_MAX_BYTES) -> ScanResult:
    """Scan the files under `paths` as they are on disk and, with `git`, the history of the git
    repository each path is in (each repository once)."""
    paths = list(paths)
    result = scan_files(paths, max_bytes=max_bytes)
    if git:
        seen: set[Path] = set()
        for p in paths:
            root = repository_root(p).resolve()
            if root not in seen:
                seen.add(root)
                scan_git_history(root, max_bytes=max_bytes, result=result)
    return result
