"""The ecosystem accepts what we archive: warcio check, cdxj-indexer, pywb replay in Chromium, WACZ."""

from __future__ import annotations

from pathlib import Path

from archive.pages import write_pages_jsonl
from crawlers.demo.programmes import expected_programmes
from tests.archive_tools import (
    cdxj_index,
    chromium_page,
    http_get,
    parse_cdxj,
    pywb_replay,
    replay_url,
    wacz_create_and_validate,
    warcio_check,
)
from tests.conftest import Crawl


def capture_of(crawl: Crawl, suffix: str) -> tuple[str, str]:
    """(url, timestamp) of the first capture whose URL ends with ``suffix``, from cdxj-indexer."""
    for line in cdxj_index(crawl.warcs):
        entry = parse_cdxj(line)
        if entry.fields.get("url", "").endswith(suffix) and entry.fields.get("mime") != "application/json":
            return entry.fields["url"], entry.timestamp
    raise AssertionError(f"no capture of *{suffix} in the index")


def test_every_warc_passes_warcio_check_and_indexes(day0: dict[str, Crawl]) -> None:
    for crawl in day0.values():
        warcio_check(crawl.warcs)
        urls = {parse_cdxj(line).fields.get("url") for line in cdxj_index(crawl.warcs)}
        assert any(url and url.startswith("http://127.0.0.1") for url in urls), crawl.report["source_id"]


def test_pywb_replays_the_static_gbk_listing(day0: dict[str, Crawl]) -> None:
    crawl = day0["demo-mofcom"]
    url, timestamp = capture_of(crawl, "/mofcom/list/index.html")
    titles = [p["title"] for p in expected_programmes("mofcom", 0)[:10]]
    with pywb_replay(crawl.warcs) as base:
        status, _, raw = http_get(replay_url(base, timestamp, url, "id_"))
        assert status == 200 and titles[0].encode("gbk") in raw
        with chromium_page() as page:
            page.goto(replay_url(base, timestamp, url), wait_until="load")
            shown = page.locator("ul.list li a").all_inner_texts()
    assert shown == titles


def test_pywb_replays_the_rendered_javascript_listing(day0: dict[str, Crawl]) -> None:
    crawl = day0["demo-academy"]
    url, timestamp = capture_of(crawl, "/academy/index.html")
    titles = [p["title"] for p in expected_programmes("academy", 0)[:10]]
    with pywb_replay(crawl.warcs) as base, chromium_page() as page:
        page.goto(replay_url(base, timestamp, url), wait_until="load")
        page.wait_for_selector("#list li.item", timeout=20_000)
        shown = page.locator("#list li.item a").all_inner_texts()
    assert shown == titles


def test_a_crawls_warcs_package_as_a_valid_wacz(day0: dict[str, Crawl], tmp_path: Path) -> None:
    warcs = day0["demo-mofcom"].warcs + day0["demo-academy"].warcs
    pages = tmp_path / "pages.jsonl"
    listed = write_pages_jsonl(warcs, pages)
    assert listed == sum(day0[s].report["pages_ok"]["listing"] + day0[s].report["pages_ok"]["detail"]
                         for s in ("demo-mofcom", "demo-academy"))
    wacz_create_and_validate(warcs, tmp_path / "demo.wacz", pages_jsonl=pages)
