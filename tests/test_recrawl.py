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
