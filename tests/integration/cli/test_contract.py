"""The CLI keeps the contract docs/cli.md states: JSON by default for one object, ISO 8601 UTC for every
instant in JSON, exit 2 for a usage mistake or a malformed value, `--version`, shell completion, and a
document that lists each command once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from importlib.metadata import version
from pathlib import Path

from tests.integration.cli.helpers import epoch, one_error_line
from tests.integration.cli.test_app import _leaf_commands
from tests.support.server import RunningServer, cli_command

CLI_MD = Path(__file__).resolve().parents[3] / "docs" / "cli.md"
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_version_prints_the_installed_version() -> None:
    proc = _run("--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"keyless {version('keyless')}\n", "")


def test_show_completion_prints_a_bash_completion_script() -> None:
    # The script is for the shell that runs `keyless` (typer detects it among the parent processes).
    proc = subprocess.run(["bash", "-c", '"$@"; exit $?', "bash", *cli_command("--show-completion")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("complete -o default -F _keyless_completion keyless")
    assert "--install-completion" in _run("--help").stdout


def test_completion_completes_a_subcommand() -> None:
    env = {**os.environ, "_KEYLESS_COMPLETE": "complete_bash", "COMP_WORDS": "keyless app cr", "COMP_CWORD": "2"}
    proc = subprocess.run(cli_command(), capture_output=True, text=True, timeout=60, check=False, env=env)
    assert (proc.returncode, proc.stdout.split()) == (0, ["create"])


def test_malformed_duration_exits_2_with_one_line() -> None:
    proc = _run("secret", "add", "some-app", "--expires-in", "banana")
    assert proc.returncode == 2
    assert one_error_line(proc.stderr) == ("error: --expires-in: duration must look like 30d, 12h, 90m, 3600s or 1y "
                                           "(see --help)")
    assert proc.stdout == ""


def test_conflicting_options_exit_2_before_any_request() -> None:
    proc = _run("token", "get", "some-app", "--scope", "api://x/.default", "--secret", "s", "--cert", "c.pem",
                "--key", "c.key", "--server", "https://127.0.0.1:9")
    assert (proc.returncode, proc.stderr) == (2, "error: give either --secret or --cert/--key, not both (see --help)\n")


def test_unknown_option_exits_2() -> None:
    proc = _run("app", "list", "--colour")
    assert proc.returncode == 2
    assert one_error_line(proc.stderr).startswith("error: No such option: --colour")


def test_init_prints_json_by_default(tmp_path: Path) -> None:
    proc = _run("init", "--data-dir", str(tmp_path / "data"), "--port", "18999")
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    assert made["server_url"] == "https://127.0.0.1:18999" and made["cli_client_id"]


def test_single_objects_print_json_by_default_with_iso_times(server: RunningServer) -> None:
    host = server.cli("host", "add", _name("web"))
    created = json.loads(host.stdout)
    assert ISO_UTC.fullmatch(created["created_at"]) and ISO_UTC.fullmatch(created["join_expires_at"])
    assert ISO_UTC.fullmatch(created["system_identity"]["created_at"])  # nested objects too
    assert epoch(created["join_expires_at"]) - epoch(created["created_at"]) in range(899, 902)  # 15 min
    assert json.loads(server.cli("host", "show", created["name"]).stdout)["id"] == created["id"]
    ident = json.loads(server.cli("identity", "create", _name("api")).stdout)
    assert ident["kind"] == "user" and ISO_UTC.fullmatch(ident["created_at"])
    assigned = json.loads(server.cli("identity", "assign", ident["name"], "--host", created["name"]).stdout)
    assert assigned["assigned"] is True
    app = json.loads(server.cli("app", "create", _name("worker")).stdout)
    fed = json.loads(server.cli("federation", "add", app["client_id"], "--name", "ci", "--issuer",
                                "https://issuer.example.test", "--subject", "repo:acme/api:ref:main").stdout)
    assert fed["client_id"] == app["client_id"] and ISO_UTC.fullmatch(fed["created_at"])
    assert ISO_UTC.fullmatch(app["created_at"])


def test_lists_stay_tables_for_people(server: RunningServer) -> None:
    out = server.cli("app", "list").stdout
    assert not out.lstrip().startswith("[") and "client_id" in out


def test_cli_md_lists_every_command_once_and_only_existing_ones() -> None:
    rows = re.findall(r"^\| `keyless ([a-z][a-z -]*?)(?: [A-Z\[-]|`)", CLI_MD.read_text(), re.MULTILINE)
    documented = [r.strip() for r in rows]
    duplicates = sorted({r for r in documented if documented.count(r) > 1})
    assert duplicates == [], duplicates
    existing = {" ".join(path) for path in _leaf_commands()} | {"agent"}
    unknown = sorted(r for r in documented if r not in existing)
    assert unknown == [], unknown
