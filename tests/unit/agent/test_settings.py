"""The agent listens on loopback only (catalog F09, F13)."""

from __future__ import annotations

import pytest

from keyless.agent.settings import AgentSettings
from keyless.errors import ConfigurationError


@pytest.mark.parametrize(("listen", "expected"), [
    ("127.0.0.1:50342", ("127.0.0.1", 50342)), ("localhost:80", ("127.0.0.1", 80)), ("[::1]:8080", ("::1", 8080)),
    ("127.9.9.9:1", ("127.9.9.9", 1)),
])
def test_loopback_addresses(listen: str, expected: tuple[str, int]) -> None:
    assert AgentSettings(listen=listen).listen_address() == expected


@pytest.mark.parametrize("listen", ["0.0.0.0:1", "[::]:1", "10.0.0.1:1", "169.254.169.254:80", "example.com:80",
                                    "127.0.0.1", "127.0.0.1:99999"])
def test_anything_else_is_refused(listen: str) -> None:
    with pytest.raises(ConfigurationError):
        AgentSettings(listen=listen).listen_address()


def test_no_tcp_listener() -> None:
    assert AgentSettings(listen=None).listen_address() is None


def test_state_dir_must_be_private(tmp_path: object) -> None:
    from pathlib import Path

    from keyless.agent.state import StateDir

    base = Path(str(tmp_path))
    loose = base / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    with pytest.raises(ConfigurationError, match="0700"):
        StateDir(loose).ensure()
    fresh = StateDir(base / "new" / "state")
    fresh.ensure()
    assert (fresh.path.stat().st_mode & 0o777) == 0o700
    blocked = base / "file"
    blocked.write_text("x")
    with pytest.raises(ConfigurationError, match="cannot use the state directory"):
        StateDir(blocked / "state").ensure()
