"""`keyless posture`'s own printers (docs/cli.md): JSON byte for byte what `emit` prints, and a table
whose cells cannot drive the terminal."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from keyless.cli import posture
from keyless.cli.times import iso_times

REPORT = {"score": {"window_days": 30, "index": 41, "signins": {"total": 3, "counts": {"secret": 2},
                                                                  "shares": {"secret": 0.6667, "certificate": 0.0001}}},
          "workloads": [{"client_id": "c1", "display_name": "orders", "last_signin_at": 1764655044.5,
                         "credentials": [{"id": "s1", "created_at": 1764655044, "expires_at": None,
                                          "sources": ["10.0.0.1"]}],
                         "risks": [{"risk": "leaked", "message": "found in repo:.env:3"}], "next_step": None}]}


@pytest.mark.parametrize("name", ["orders", "caf\u00e9", "evil\u202e\x7f\x1b[31m"])
def test_json_output_is_exactly_what_json_dumps_prints(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = json.loads(json.dumps(REPORT))
    report["workloads"][0]["display_name"] = name
    posture._print_json(report)
    printed = capsys.readouterr().out
    assert printed == json.dumps(iso_times(report), indent=2, default=str) + "\n"
    assert "\x1b" not in printed and "\u202e" not in printed


def test_table_escapes_control_and_format_characters_and_aligns_columns() -> None:
    lines = posture._table_lines([("evil\x1b[2J\u202e", "c1", "application", "secret", "leaked", "rotate"),
                                  ("ok", "c2", "identity", "managed_identity", "-", "-")])
    assert all("\x1b" not in line and "\u202e" not in line for line in lines)
    assert "evil\\x1b[2J\\u202e" in lines[1]
    assert lines[0].split()[:2] == ["display_name", "client_id"]
    assert len({line.index("c2" if "c2" in line else "c1" if "c1" in line else "client_id") for line in lines}) == 1


@pytest.mark.parametrize("where", ["none", "workload", "credential", "risk"])
def test_json_output_converts_instants_at_keys_it_does_not_know(where: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The documented shape ("none") takes the short path; a newer server's extra instant anywhere is
    still written as ISO 8601, as `emit` would."""
    report = json.loads(json.dumps(REPORT))
    w = report["workloads"][0]
    w.update({"hosts": [], "sources": [], "agent_hosts": [], "kind": "application", "identity_kind": None,
              "rung": "secret", "signins": 1})
    w["credentials"][0].update({"kind": "secret", "display_name": "", "label": "kls_Ab3", "state": "active",
                                "last_used_at": None, "signins": 1, "from_internal_ca": None})
    w["risks"][0].update({"credential_id": "s1", "fix": [], "by_next_step": False})
    target = {"none": {}, "workload": w, "credential": w["credentials"][0], "risk": w["risks"][0]}[where]
    target["found_at"] = 1764655044
    posture._print_json(report)
    printed = capsys.readouterr().out
    assert printed == json.dumps(iso_times(report), indent=2, default=str) + "\n"
    assert (w.keys() == posture.WORKLOAD_KEYS) is (where != "workload")  # "none" is the documented shape
    assert ('"found_at": "2025-12-02T05:57:24Z"' in printed) is (where != "none")
    assert '"created_at": "2025-12-02T05:57:24Z"' in printed


@pytest.mark.parametrize("sizes", [(), (0,), (2, 0, 3), (0, 1)])
def test_json_written_page_by_page_is_the_joined_report(sizes: tuple[int, ...]) -> None:
    """The pages are encoded as they arrive; the text is `json.dumps` of the whole report, whatever
    the pages' sizes (an empty page, no workload at all)."""
    pages, n = [], 0
    for size in sizes:
        page = []
        for _ in range(size):
            w = json.loads(json.dumps(REPORT["workloads"][0]))
            w["display_name"] = f"app-\u00e9-{n}" if n % 2 else f"app-{n}"
            page.append(w)
            n += 1
        pages.append(page)
    report = {"score": REPORT["score"] if sizes else None, "workloads": [w for p in pages for w in p]}
    expected = json.dumps(iso_times(report), indent=2, default=str) + "\n"
    assert posture._json_text(report["score"], [json.loads(json.dumps(p)) for p in pages]) == expected


class FakePages:
    """The three calls `posture._pages` makes of a `ManagementClient`, over canned answers."""

    def __init__(self, bodies: list[bytes], fail_at: int | None = None) -> None:
        self.bodies, self.fail_at, self.asked = bodies, fail_at, []

    def url_of(self, path: str, params: dict[str, object]) -> tuple[str, list[tuple[str, object]]]:
        return "https://s" + path, list(params.items())

    def get_page(self, url: str, query: object) -> object:
        n = len(self.asked)
        self.asked.append(url)
        if n == self.fail_at:
            raise posture.CliError("page failed")
        return SimpleNamespace(content=self.bodies[n], links={"next": {"url": f"/p{n + 1}"}}
                               if n + 1 < len(self.bodies) else {})

    def next_page(self, resp: object, seen: set[str]) -> str | None:
        following = resp.links.get("next", {}).get("url")  # type: ignore[attr-defined]
        return None if following is None else "https://s" + following


def test_pages_come_in_order_each_asked_for_once_and_a_failure_prints_nothing(
        capsys: pytest.CaptureFixture[str]) -> None:
    bodies = [json.dumps({"score": None, "workloads": [{"client_id": f"c{n}"}], "next_cursor": None}).encode()
              for n in range(3)]
    api = FakePages(bodies)
    assert list(posture._pages(api, {"limit": 2})) == bodies  # type: ignore[arg-type]
    assert api.asked == ["https://s/posture", "https://s/p1", "https://s/p2"]
    failing = FakePages(bodies, fail_at=2)
    pages = (json.loads(b)["workloads"] for b in posture._pages(failing, {}))  # type: ignore[arg-type]
    with pytest.raises(posture.CliError):
        sys.stdout.write(posture._json_text(None, pages))
    assert capsys.readouterr().out == ""
