"""`keyless` registers only the command it runs (src/keyless/cli/main.py): a run imports that command's
module and nothing of the others, while `keyless --help` still lists every command with its help text
(docs/cli.md) and the in-process `app` the tests drive holds them all."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from keyless.cli import main as cli_main
from tests.support.server import cli_command

NAMES = [name for name, *_ in cli_main.COMMANDS]


def _modules_after(*args: str) -> set[str]:
    """The modules a `keyless ARGS` run has imported once it has answered."""
    script = ("import sys\nsys.argv = ['keyless', *sys.argv[1:]]\nfrom keyless.cli.main import main\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\nprint(' '.join(sorted(sys.modules)), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60,
                          check=False)
    return set(proc.stderr.split()[-1000:]) if proc.stderr else set()


def test_root_help_lists_every_command_with_its_help() -> None:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    proc = subprocess.run(cli_command("--help"), capture_output=True, text=True, timeout=60, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    listed = {line.strip("│ ").split(" ", 1)[0]: line for line in proc.stdout.splitlines() if line.startswith("│ ")}
    assert set(NAMES) <= set(listed)
    assert "Each workload's rung on the credential ladder" in listed["posture"]
    assert "Applications: workloads (clients)" in listed["app"]


def test_the_in_process_app_has_every_command_in_order() -> None:
    app = cli_main.app
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    assert sorted(names) == sorted(NAMES)
    assert [n for n in NAMES if n in names] == NAMES


@pytest.mark.parametrize(("args", "command"), [
    (["posture", "-o", "json"], "posture"),
    (["--data-dir", "d", "-o", "json", "app", "list"], "app"),
    (["--data-dir=d", "app", "list"], "app"),
    (["--help"], None),
    (["--version"], None),
    ([], None),
    (["bogus", "x"], None),
    (["--unknown", "app"], None),
    (["--data-dir"], None),
])
def test_the_command_of_a_command_line(args: list[str], command: str | None) -> None:
    assert cli_main.command_of(args) == command


def test_a_command_imports_only_its_own_module() -> None:
    loaded = _modules_after("posture", "--help")
    assert "keyless.cli.posture" in loaded
    others = {f"keyless.cli.{module}" for _, module, *_ in cli_main.COMMANDS if module != "posture"}
    assert not loaded & others
    # The SDK's credentials (certificates, JOSE) are not needed until a token is fetched.
    assert not {"keyless.client.credentials", "keyless.client.assertions", "cryptography.x509"} & loaded
    # The ladder's names without its rules (keyless.domain.ladder).
    assert "keyless.domain.ladder" in loaded and "keyless.domain.posture" not in loaded


def test_a_misspelt_command_is_refused_with_the_suggestions_of_every_command() -> None:
    proc = subprocess.run(cli_command("postur"), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: No such command 'postur'. Did you mean 'posture', 'host'? (see --help)"
