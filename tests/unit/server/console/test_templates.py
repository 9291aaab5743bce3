"""Console templates (catalog O11, O12): the engine escapes everything and no template opts out, and
no template holds inline script or style (the CSP forbids both; a page relying on one would break)."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from keyless.server.console.render import CSP, env

TEMPLATES = sorted(p.name for p in files("keyless.server.console").joinpath("templates").iterdir()
                   if p.name.endswith(".html"))


def test_the_engine_escapes_by_default() -> None:
    assert env.from_string("{{ v }}").render(v='<script>alert("x")</script>') == \
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_template_bypasses_escaping_or_inlines_script_or_style(name: str) -> None:
    source = files("keyless.server.console").joinpath("templates", name).read_text()
    assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup", source), name
    assert not re.search(r"<script(?![^>]*\bsrc=)", source), f"{name}: inline script"
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", source), f"{name}: inline style or event handler"
    assert "javascript:" not in source, name


def test_the_policy_allows_only_our_own_files() -> None:
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP and "*" not in CSP
    assert "frame-ancestors 'none'" in CSP and "default-src 'none'" in CSP
