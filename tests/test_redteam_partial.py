"""A listing that arrives in part is a failed page, never a shorter list: real ``listwatch crawl`` runs against
a hostile server on loopback that cuts its answer in each way a network does (a Content-Length larger than the
body, a reset mid-body, a close mid-page with no Content-Length), then no programme may be declared missing."""

from __future__ import annotations

import socket
import struct
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.conftest import crawl_sources
from tests.hostile import HostileSite, listing_html, source_yaml
from tests.programs_support import pipeline_catalog, run_events


class Cutter:
    """Answers one listing page whole, or cut at half its bytes in the way ``mode`` names."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.mode = "whole"

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        body, mode = self.body, self.mode
        sent = body if mode in ("whole", "close-whole") else body[:len(body) // 2]
        length = "" if mode.startswith("close") else f"Content-Length: {len(body)}\r\n"
        handler.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n{length}"
                            "Connection: close\r\n\r\n".encode() + sent)
        handler.wfile.flush()
        if mode == "reset":  # RST instead of FIN
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()


def test_a_listing_cut_mid_body_is_a_failed_page_and_declares_no_removals(tmp_path: Path) -> None:
    data, modes = tmp_path / "data", ("short", "reset", "close-half", "close-whole")
    with HostileSite() as site:
        cutters, paths = {}, []
        for mode in modes:
            items = [(f"{site.url}/{mode}/{n}.html", f"Programme {mode} {n}") for n in range(10)]
            cutters[mode] = Cutter(listing_html(items).encode())
            site.raw(f"/{mode}.html", cutters[mode])
            paths.append(tmp_path / f"{mode}.yaml")
            paths[-1].write_text(source_yaml(site.url, mode, f"/{mode}.html"), encoding="utf-8")
        first = crawl_sources(paths, data_dir=data)
        assert all(c.report["complete"] and len(c.items) == 10 for c in first.values()), first

        for mode in modes:
            cutters[mode].mode = mode
        cut = crawl_sources(paths, data_dir=data)

    whole = cut.pop("close-whole")  # a close-delimited body that is all there is the page, as before
    assert whole.report["complete"] and len(whole.items) == 10, whole.report
    for mode, crawl in cut.items():
        assert not crawl.report["complete"], (mode, crawl.report)
        assert crawl.report["pages_failed"]["listing"] == 1, (mode, crawl.report)
        message = crawl.report["problems"][0]["message"]
        assert "Error" not in message and ("closed" in message or "cut off" in message), (mode, message)
        events = run_events(data, crawl.report["run_id"])
        assert not events.keys() & {"missing", "removed"}, (mode, events)


def test_a_listing_whose_next_page_never_ends_stops_at_max_pages_and_says_why(tmp_path: Path) -> None:
    from archive.catalog.models import CrawlRun

    with HostileSite() as site:
        for n in range(1, 12):  # every page links a next one: the trap stops at pagination.max_pages
            site.page(f"/inf/{n}.html", listing_html([(f"/item/{n}.html", f"Item {n}")],
                                                     extra=f'<a class="next" href="/inf/{n + 1}.html">next</a>'))
        path = tmp_path / "endless.yaml"
        path.write_text(source_yaml(site.url, "endless", "/inf/1.html", extra=(
            "pagination: {kind: next_link, next: 'a.next::attr(href)', max_pages: 4}\n")), encoding="utf-8")
        crawl = crawl_sources([path], data_dir=tmp_path / "d")["endless"]
    assert len(crawl.items) == 4 and not crawl.report["complete"], crawl.report
    assert "/inf/5.html" not in site.hits
    catalog = pipeline_catalog(tmp_path / "d")
    try:
        with catalog.session() as session:
            run = session.get(CrawlRun, crawl.report["run_id"])
            assert run is not None and run.status == "incomplete"
            assert "stopped at pagination.max_pages (4)" in run.reason, run.reason
    finally:
        catalog.dispose()


def test_a_listing_of_a_million_links_is_a_failed_page_not_a_million_items(tmp_path: Path) -> None:
    from crawlers.bounds import MAX_ITEMS_PER_PAGE

    with HostileSite() as site:
        site.page("/trap.html", listing_html([(f"/m/{n}", f"M{n}") for n in range(MAX_ITEMS_PER_PAGE + 1)]))
        path = tmp_path / "trap.yaml"
        path.write_text(source_yaml(site.url, "trap", "/trap.html"), encoding="utf-8")
        crawl = crawl_sources([path], data_dir=tmp_path / "d")["trap"]
    assert crawl.items == [] and not crawl.report["complete"], crawl.report
    [problem] = crawl.report["problems"]
    assert f"matched {MAX_ITEMS_PER_PAGE + 1:,} nodes" in problem["message"], problem


def test_a_brotli_listing_cut_mid_stream_is_a_failed_page(tmp_path: Path) -> None:
    """Scrapy's brotli decoder keeps what a truncated stream gave without an error (gzip's is checked since
    issue 8): half a list, the other half declared missing."""
    import brotli

    with HostileSite() as site:
        items = [(f"{site.url}/br/{n}.html", f"Programme br {n} " + "申报" * 40) for n in range(40)]
        body = brotli.compress(listing_html(items).encode())

        def cut(handler: BaseHTTPRequestHandler) -> None:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                                b"Content-Encoding: br\r\nConnection: close\r\n\r\n" + body[:len(body) // 2])

        site.raw("/br.html", cut)
        path = tmp_path / "br.yaml"
        path.write_text(source_yaml(site.url, "br", "/br.html"), encoding="utf-8")
        crawl = crawl_sources([path], data_dir=tmp_path / "d")["br"]
    assert not crawl.report["complete"], crawl.report
    assert [p["kind"] for p in crawl.report["problems"]] == ["corrupt-body"], crawl.report["problems"]
    assert "br body is truncated" in crawl.report["problems"][0]["message"]
