"""`ListenerLimits` refuses limits that would disable a defence (docs/security.md "Slow and idle clients")."""

from __future__ import annotations

import pytest

from keyless.errors import ConfigurationError
from keyless.listen import ListenerLimits


@pytest.mark.parametrize(("field", "value", "message"), [
    ("header_timeout", 0.0, "header-timeout must be over 0 and at most 3600 seconds"),
    ("body_timeout", -1.0, "body-timeout must be over 0 and at most 3600 seconds"),
    ("keep_alive_timeout", 3601.0, "keep-alive-timeout must be over 0 and at most 3600 seconds"),
    ("shutdown_timeout", float("nan"), "shutdown-timeout must be over 0 and at most 3600 seconds"),
    ("max_per_source", 0, "max-per-source must be 1-1000000"),
    ("max_connections", 10**7, "max-connections must be 1-1000000"),
    ("max_idle", -5, "max-idle must be 1-1000000"),
])
def test_a_limit_that_would_disable_the_guard_is_refused(field: str, value: float, message: str) -> None:
    with pytest.raises(ConfigurationError) as exc:
        ListenerLimits(**{field: value})  # type: ignore[arg-type]
    assert str(exc.value) == message


def test_uvicorn_gets_the_keep_alive_and_shutdown_bounds_and_a_concurrency_limit_above_the_guards() -> None:
    limits = ListenerLimits(keep_alive_timeout=2, shutdown_timeout=3, max_connections=100)
    assert limits.uvicorn_options() == {"timeout_keep_alive": 2, "timeout_graceful_shutdown": 3,
                                        "limit_concurrency": 164}
