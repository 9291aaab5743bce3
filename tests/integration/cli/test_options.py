"""The shared options (`--data-dir`, `--server`, `--ca`, `-o`) are declared once (keyless.cli.options) and
accepted both before the command and after it, where docs/cli.md puts them; the most specific wins:
after the command, before it, the environment, the default."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import typer

from keyless.cli.main import app as keyless_app
from tests.integration.cli.helpers import one_error_line
from tests.support.server import RunningServer, cli_command


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEYLESS_")}
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=60, check=False,
                          env={**clean, **(env or {})})


def _data_dir_used(proc: subprocess.CompletedProcess[str]) -> str:
    """With no server configured, the CLI names the data directory it looked in (one error line)."""
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc.stderr)
    assert "(no data directory at " in line, line
    return line.rsplit("(no data directory at ", 1)[1].rstrip(")")


def test_data_dir_before_the_command_is_used(tmp_path: Path) -> None:
    assert _data_dir_used(_run("--data-dir", str(tmp_path / "root"), "app", "list")) == str(tmp_path / "root")


def test_data_dir_after_the_command_beats_the_one_before(tmp_path: Path) -> None:
    proc = _run("--data-dir", str(tmp_path / "root"), "app", "list", "--data-dir", str(tmp_path / "leaf"))
    assert _data_dir_used(proc) == str(tmp_path / "leaf")


def test_data_dir_before_the_command_beats_the_environment(tmp_path: Path) -> None:
    proc = _run("--data-dir", str(tmp_path / "root"), "app", "list", env={"KEYLESS_DATA_DIR": str(tmp_path / "env")})
    assert _data_dir_used(proc) == str(tmp_path / "root")


def test_environment_is_used_when_no_option_is_given(tmp_path: Path) -> None:
    proc = _run("vault", "list", env={"KEYLESS_DATA_DIR": str(tmp_path / "env")})
    assert _data_dir_used(proc) == str(tmp_path / "env")


def test_server_before_the_command_is_checked_like_the_one_after(tmp_path: Path) -> None:
    for args in (("--server", "http://plain.example", "app", "list"),
                 ("app", "list", "--server", "http://plain.example")):
        proc = _run(*args, "--data-dir", str(tmp_path))
        assert proc.returncode == 1
        assert one_error_line(proc.stderr) == "error: the server URL must start with https://"


def test_an_option_before_a_command_that_does_not_take_it_is_a_usage_error(tmp_path: Path) -> None:
    proc = _run("--server", "https://keyless.example", "init", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2
    assert one_error_line(proc.stderr) == "error: `init` does not take --server (see --help)"
    assert not (tmp_path / "d").exists()


def test_init_takes_the_data_dir_before_the_command(tmp_path: Path) -> None:
    proc = _run("--data-dir", str(tmp_path / "made"), "init", "--port", "18998")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data_dir"] == str((tmp_path / "made").resolve())


def test_output_before_the_command_overrides_the_command_default(server: RunningServer) -> None:
    table = server.cli("app", "list").stdout
    assert not table.lstrip().startswith("[")
    rows = json.loads(server.cli("-o", "json", "app", "list").stdout)
    assert isinstance(rows, list) and all("client_id" in r for r in rows)
    # … and the option after the command still wins over the one before it.
    assert not server.cli("--output", "json", "app", "list", "-o", "table").stdout.lstrip().startswith("[")


def _leaves() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []

    def walk(group: Any, path: str) -> None:
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, f"{path} {name}".strip())
            else:
                found.append((f"{path} {name}".strip(), cmd))

    walk(typer.main.get_command(keyless_app), "")
    return found


def test_every_command_with_a_data_dir_gets_it_from_the_shared_declaration() -> None:
    """A command that declared `--data-dir` itself would silently ignore `keyless --data-dir DIR cmd`."""
    own = [path for path, cmd in _leaves()
           if any(p.name == "data_dir" for p in cmd.params) and not hasattr(cmd.callback, "__wrapped__")]
    assert own == [], own


def _callbacks() -> list[tuple[str, Any]]:
    """Every command and every group that runs something itself (`keyless agent`)."""
    found: list[tuple[str, Any]] = []

    def walk(group: Any, path: str) -> None:
        for name, cmd in group.commands.items():
            found.append((f"{path} {name}".strip(), cmd))
            if hasattr(cmd, "commands"):
                walk(cmd, f"{path} {name}".strip())

    walk(typer.main.get_command(keyless_app), "")
    return [(path, cmd) for path, cmd in found if cmd.callback is not None]


def test_every_server_and_ca_option_comes_from_the_shared_declaration() -> None:
    """`keyless agent` declared its own `--server`/`--ca` once: `keyless --server URL agent` was ignored
    and `KEYLESS_SERVER` never read. Every command or group callback taking them now gets them from
    keyless.cli.options."""
    own = [path for path, cmd in _callbacks()
           if any(p.name in {"server", "ca"} for p in cmd.params) and not hasattr(cmd.callback, "__wrapped__")]
    assert own == [], own
    agent = dict(_callbacks())["agent"]
    server = next(p for p in agent.params if p.name == "server")
    assert (server.opts, server.envvar) == (["--server"], "KEYLESS_SERVER")


JOIN = "kjt.00000000-0000-0000-0000-000000000001.00000000-0000-0000-0000-000000000002.abcdefghijklmnopqrstuvwxyz"


def test_the_agent_reads_its_server_before_or_after_the_command_or_from_the_environment(tmp_path: Path) -> None:
    agent = ("--state-dir", str(tmp_path / "state"), "--join-token", JOIN, "--listen", "none")
    for args, env in ((("--server", "http://plain.example", "agent", *agent), None),
                      (("agent", *agent, "--server", "http://plain.example"), None),
                      (("agent", *agent), {"KEYLESS_SERVER": "http://plain.example"})):
        proc = _run(*args, env=env)
        assert proc.returncode == 1, proc.stderr
        assert one_error_line(proc.stderr) == "error: the agent talks to the server over https only"
    proc = _run("--data-dir", str(tmp_path), "agent", *agent)
    assert proc.returncode == 2
    assert one_error_line(proc.stderr) == "error: `agent` does not take --data-dir (see --help)"
