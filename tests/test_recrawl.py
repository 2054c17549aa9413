"""Cheap re-crawls: conditional GETs answered 304 and identical payloads become revisit records."""

from __future__ import annotations

from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from crawlers.demo.site import DemoSite
from tests.archive_tools import http_get, pywb_replay, replay_url, warcio_check
from tests.conftest import DEMO_SOURCES, crawl_sources


def revisit_profiles(warcs: list[Path]) -> dict[str, str]:
    found = {}
    for path in warcs:
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "revisit":
                    found[record.rec_headers.get_header("WARC-Target-URI")] = \
                        record.rec_headers.get_header("WARC-Profile").rsplit("/", 1)[1]
    return found


def test_unchanged_recrawl_uses_conditional_gets_and_revisits(tmp_path: Path, demo_site: DemoSite) -> None:
    source = DEMO_SOURCES / "mofcom.yaml"
    first = crawl_sources([source], data_dir=tmp_path, site=demo_site)["demo-mofcom"]
    second = crawl_sources([source], data_dir=tmp_path, site=demo_site)["demo-mofcom"]

    assert second.report["complete"]
    assert sorted(i["key"] for i in second.items) == sorted(i["key"] for i in first.items)
    assert {i["key"]: i["fields"] for i in second.items} == {i["key"]: i["fields"] for i in first.items}

    profiles = revisit_profiles(second.warcs)
    listing = f"{demo_site.url}/mofcom/list/index.html"
    assert profiles[listing] == "server-not-modified"
    assert profiles.pop(f"{demo_site.url}/robots.txt") == "identical-payload-digest"  # robots.txt: no validators
    assert all(p == "server-not-modified" for p in profiles.values())
    assert len(profiles) >= first.report["pages_ok"]["listing"] + first.report["pages_ok"]["detail"]
    assert second.report["warc_bytes"] < first.report["warc_bytes"]
    warcio_check(first.warcs + second.warcs)

    # pywb replays the second crawl's listing page from the first crawl's payload.
    with pywb_replay(first.warcs + second.warcs) as base:
        status, _, body = http_get(replay_url(base, second.report["finished"].replace("-", "").replace(":", "")
                                              .replace("T", "")[:14], listing, "id_"))
    assert status == 200
    assert "援外培训".encode("gbk") in body or b"<ul class=\"list\">" in body


def test_changed_page_is_stored_in_full_and_unchanged_attachments_revisit(tmp_path: Path, demo_site: DemoSite) -> None:
    source = DEMO_SOURCES / "mofcom.yaml"
    crawl_sources([source], data_dir=tmp_path, site=demo_site)
    demo_site.day = 1
    second = crawl_sources([source], data_dir=tmp_path, site=demo_site)["demo-mofcom"]
    profiles = revisit_profiles(second.warcs)
    listing = f"{demo_site.url}/mofcom/list/index.html"
    assert listing not in profiles, "a changed listing page must be stored in full"
    assert any(url.endswith(".pdf") for url in profiles), "unchanged attachments should be revisits"
    warcio_check(second.warcs)


def test_an_unchanged_page_keeps_the_dates_it_was_read_with(tmp_path: Path) -> None:
    """A year-less "12-28" on a page first captured in December and seen unchanged (a revisit) in January keeps
    the December capture's year, live and in ``programs reprocess`` alike: the page says what it said then."""
    from scrapy import Request
    from scrapy.http import HtmlResponse

    from archive.dedup import Earlier
    from archive.programs.reprocess import Page
    from crawlers.sources import load_source
    from crawlers.spiders.listing import ListingSpider

    path = tmp_path / "s.yaml"
    path.write_text('id: yearless\nname: y\nstart_urls: ["http://127.0.0.1:1/list"]\n'
                    'items: {selector: "li", key: url, fields: {url: {css: "a::attr(href)", type: url},\n'
                    '  date: {css: "span::text", type: date, missing_year: capture}}}\n', encoding="utf-8")
    spider = ListingSpider(load_source(path))
    body = b'<ul><li><a href="/p/1">1</a><span>12-28</span></li></ul>'
    original = Earlier("http://127.0.0.1:1/list", "2025-12-28T09:00:00Z", "<urn:uuid:x>", "sha256:x")
    dated = {}
    for name, meta in (("first", {"warc_date": "2025-12-28T09:00:00Z"}),
                       ("revisit", {"warc_date": "2026-01-03T09:00:00Z", "listwatch_original": original}),
                       ("changed", {"warc_date": "2026-01-03T09:00:00Z"})):
        request = Request("http://127.0.0.1:1/list", meta=meta)
        response = HtmlResponse(request.url, body=body, headers={"Content-Type": "text/html; charset=utf-8"},
                                request=request)
        dated[name] = spider._extract(response, "listing").items[0]["fields"]["date"]
    assert dated == {"first": "2025-12-28", "revisit": "2025-12-28", "changed": "2026-12-28"}

    revisit = Page("http://127.0.0.1:1/list", "<urn:uuid:y>", path, 0, 304, "revisit", date="2026-01-03T09:00:00Z",
                   refers_to="<urn:uuid:x>", refers_to_date="2025-12-28T09:00:00Z")
    assert revisit.captured_at is not None and revisit.captured_at.year == 2025
    response = Page("http://127.0.0.1:1/list", "<urn:uuid:z>", path, 0, 200, "response", date="2026-01-03T09:00:00Z")
    assert response.captured_at is not None and response.captured_at.year == 2026
