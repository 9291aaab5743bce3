"""`keyless-scan`: the offline check, for pre-commit hooks and CI without a server.

It finds Keyless client secrets by format and checksum only (no server, no network, no server
dependencies: `pip install keyless` is enough, which is what `pre-commit` installs from
`.pre-commit-hooks.yaml`). Exit status: 0 when nothing is found, 1 when a secret is found, 2 on a
usage or scan error, so a commit or a CI job holding a secret fails. It prints where each secret is
and its hint (`kls_abc…`), never the secret (catalog O09). `keyless scan` (the full CLI) adds the
server's answer: is it live, whose is it, revoke it.

Example: keyless-scan --git .
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keyless.crypto.secrets import PREFIX
from keyless.leaks.scanner import DEFAULT_MAX_BYTES, Finding, ScanError, ScanResult, scan


def shown(hint: str) -> str:
    """How a found secret is named in output: its prefix and hint, as `keyless secret list` shows."""
    return f"{PREFIX}{hint}…"


def finding_json(f: Finding) -> dict[str, Any]:
    """A finding as scripts read it: where, and the hint; never the secret."""
    return {"location": f.location, "path": f.path, "line": f.line, "commit": f.commit, "hint": f.hint,
            "shown": shown(f.hint)}


def result_json(result: ScanResult) -> dict[str, Any]:
    return {
        "findings": [finding_json(f) for f in result.findings],
        "skipped": [{"path": s.path, "reason": s.reason} for s in result.skipped],
        "files_scanned": result.files_scanned,
        "blobs_scanned": result.blobs_scanned,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="keyless-scan",
        description="Find Keyless client secrets (format + checksum, offline). Exit 1 when one is found.",
        epilog="Example: keyless-scan --git .   (pre-commit passes the staged files as PATHs)",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: none, exit 0)")
    p.add_argument("--git", action="store_true", help="also scan the history of the git repository of each PATH")
    p.add_argument("--max-file-size", type=int, default=DEFAULT_MAX_BYTES, metavar="BYTES",
                   help=f"skip (and report) files larger than this (default {DEFAULT_MAX_BYTES})")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="text for people, json for scripts")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.max_file_size < 1:
        print("error: --max-file-size must be positive (see --help)", file=sys.stderr)
        return 2
    try:
        result = scan([Path(p) for p in args.paths], git=args.git, max_bytes=args.max_file_size)
    except ScanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output == "json":
        print(json.dumps(result_json(result), indent=2))
    else:
        for f in result.findings:
            print(f"{f.location}: Keyless client secret {shown(f.hint)}")
        for s in result.skipped:
            print(f"{s.path}: not scanned ({s.reason})", file=sys.stderr)
        if result.findings:
            print(f"{len(result.findings)} Keyless secret(s) found: remove them, then revoke them "
                  f"(`keyless scan --revoke`, docs/leaks.md)", file=sys.stderr)
    return 1 if result.findings else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
