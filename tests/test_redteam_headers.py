"""Malformed HTTP answers to a listing page: a failed page said in words, never removals. Real ``listwatch
crawl`` runs against hand-written answers on loopback. Two Content-Length headers that disagree (a body whose
length cannot be known) were reported as "the response was cut off: Invalid response: …", which it was not."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.conftest import crawl_sources
from tests.hostile import HostileSite, listing_html, source_yaml
from tests.programs_support import run_events

BODY = listing_html([(f"/p/{n}.html", f"Programme {n}") for n in range(1, 4)]).encode()
HEAD = "Content-Type: text/html; charset=utf-8\r\n"
ANSWERS = {   # status line and headers, as sent; the body follows
    "lengths": f"HTTP/1.1 200 OK\r\n{HEAD}Content-Length: {len(BODY)}\r\nContent-Length: 10\r\n",
    "status": f"HTTP/1.1 OK\r\n{HEAD}Content-Length: {len(BODY)}\r\n",
}


def _answer(head: str | None) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write((head or f"HTTP/1.1 200 OK\r\n{HEAD}Content-Length: {len(BODY)}\r\n").encode()
                            + b"\r\n" + BODY)
    return answer


def test_an_answer_that_is_not_valid_http_is_a_failed_page_said_so(tmp_path: Path) -> None:
    data, paths = tmp_path / "data", []
    with HostileSite() as site:
        for name in ANSWERS:
            site.raw(f"/{name}.html", _answer(None))
            paths.append(tmp_path / f"{name}.yaml")
            paths[-1].write_text(source_yaml(site.url, name, f"/{name}.html"), encoding="utf-8")
        assert all(c.report["complete"] for c in crawl_sources(paths, data_dir=data).values())

        for name, head in ANSWERS.items():
            site.raw(f"/{name}.html", _answer(head))
        bad = crawl_sources(paths, data_dir=data)
    for name, crawl in bad.items():
        assert not crawl.report["complete"], (name, crawl.report)
        [problem] = crawl.report["problems"]
        assert problem["kind"] == "malformed", (name, problem)
        assert problem["message"].startswith("the server's answer is not valid HTTP ("), (name, problem)
        assert run_events(data, crawl.report["run_id"]) == {"source_health": 1}
    assert "conflicting Content-Length" in bad["lengths"].report["problems"][0]["message"]
